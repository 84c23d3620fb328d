# Optional external HTTPS load balancer in front of the service (var.load_balancer):
# a global external Application Load Balancer (EXTERNAL_MANAGED) with a
# serverless NEG pointing at the Cloud Run service, a Google-managed
# certificate for the domains, a Cloud Armor policy (per-client rate limit
# and optional source ranges) and an HTTP-to-HTTPS redirect. The service
# keeps ALLOW_INTERNAL_AND_GCLB ingress and IAM authentication: callers send
# an ID token whose audience is the service's run.app URL (the uri output).

locals {
  lb        = var.load_balancer != null
  lb_labels = merge(var.labels, { function = var.name })
}

resource "google_compute_region_network_endpoint_group" "default" {
  count = local.lb ? 1 : 0

  project               = var.project_id
  region                = var.region
  name                  = "${var.name}-neg"
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = var.service.service_name
  }
}

resource "google_compute_security_policy" "default" {
  count = local.lb ? 1 : 0

  project = var.project_id
  name    = "${var.name}-policy"
  type    = "CLOUD_ARMOR"
  labels  = local.lb_labels

  # Allowed source ranges (when set; everything else is denied by the
  # default rule).
  dynamic "rule" {
    for_each = length(var.load_balancer.allowed_source_ranges) > 0 ? [var.load_balancer.allowed_source_ranges] : []
    content {
      action   = "allow"
      priority = 900
      match {
        versioned_expr = "SRC_IPS_V1"
        config {
          src_ip_ranges = rule.value
        }
      }
    }
  }

  # Rate limit per client IP: 429 above the threshold.
  rule {
    action   = "throttle"
    priority = 1000
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    rate_limit_options {
      conform_action = "allow"
      exceed_action  = "deny(429)"
      enforce_on_key = "IP"
      rate_limit_threshold {
        count        = var.load_balancer.rate_limit.count
        interval_sec = var.load_balancer.rate_limit.interval_sec
      }
    }
  }

  # Default rule.
  rule {
    action   = length(var.load_balancer.allowed_source_ranges) > 0 ? "deny(403)" : "allow"
    priority = 2147483647
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }
}

resource "google_compute_backend_service" "default" {
  count = local.lb ? 1 : 0

  project               = var.project_id
  name                  = "${var.name}-backend"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  security_policy       = google_compute_security_policy.default[0].id

  backend {
    group = google_compute_region_network_endpoint_group.default[0].id
  }

  log_config {
    enable      = true
    sample_rate = 1
  }
}

resource "google_compute_url_map" "default" {
  count = local.lb ? 1 : 0

  project         = var.project_id
  name            = "${var.name}-https"
  default_service = google_compute_backend_service.default[0].id
}

resource "google_compute_managed_ssl_certificate" "default" {
  count = local.lb ? 1 : 0

  project = var.project_id
  name    = "${var.name}-cert"

  managed {
    domains = var.load_balancer.domains
  }
}

resource "google_compute_target_https_proxy" "default" {
  count = local.lb ? 1 : 0

  project          = var.project_id
  name             = "${var.name}-https"
  url_map          = google_compute_url_map.default[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.default[0].id]
}

resource "google_compute_global_address" "lb" {
  count = local.lb ? 1 : 0

  project = var.project_id
  name    = "${var.name}-lb"
  labels  = local.lb_labels
}

resource "google_compute_global_forwarding_rule" "https" {
  count = local.lb ? 1 : 0

  project               = var.project_id
  name                  = "${var.name}-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.lb[0].id
  port_range            = "443"
  target                = google_compute_target_https_proxy.default[0].id
  labels                = local.lb_labels
}

# Plain HTTP only redirects to HTTPS.
resource "google_compute_url_map" "redirect" {
  count = local.lb ? 1 : 0

  project = var.project_id
  name    = "${var.name}-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  count = local.lb ? 1 : 0

  project = var.project_id
  name    = "${var.name}-redirect"
  url_map = google_compute_url_map.redirect[0].id
}

resource "google_compute_global_forwarding_rule" "http" {
  count = local.lb ? 1 : 0

  project               = var.project_id
  name                  = "${var.name}-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.lb[0].id
  port_range            = "80"
  target                = google_compute_target_http_proxy.redirect[0].id
  labels                = local.lb_labels
}
