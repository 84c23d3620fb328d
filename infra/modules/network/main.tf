locals {
  labels = merge(var.labels, { env = var.env })
}

resource "google_compute_network" "default" {
  project                 = var.project_id
  name                    = var.name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "default" {
  project                  = var.project_id
  region                   = var.region
  name                     = "${var.name}-${var.region}"
  network                  = google_compute_network.default.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true
}

# Private services access: Cloud SQL gets a private IP in this range,
# reachable from the VPC and nowhere else.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${var.name}-private-services"
  labels        = local.labels
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  address       = var.private_services_range.address
  prefix_length = var.private_services_range.prefix_length
  network       = google_compute_network.default.id
}

resource "google_service_networking_connection" "default" {
  network                 = google_compute_network.default.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}
