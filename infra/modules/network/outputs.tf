output "id" {
  description = "Network id (projects/<p>/global/networks/<name>), usable for private IP once private services access is connected."
  value       = google_compute_network.default.id
  depends_on  = [google_service_networking_connection.default]
}

output "name" {
  description = "Network name."
  value       = google_compute_network.default.name
}

output "subnetwork_id" {
  description = "Id of the serverless subnetwork."
  value       = google_compute_subnetwork.default.id
}

output "private_services_range" {
  description = "Name of the range reserved for private services access."
  value       = google_compute_global_address.private_services.name
}

output "egress" {
  description = "The network and subnetwork names (Direct VPC egress takes names, not ids) and the subnetwork's region: the event-function network input."
  value = {
    network           = google_compute_network.default.name
    subnetwork        = google_compute_subnetwork.default.name
    subnetwork_region = google_compute_subnetwork.default.region
  }
  depends_on = [google_service_networking_connection.default]
}
