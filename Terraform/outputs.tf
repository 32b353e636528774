# Names for the Azure CLI and Core Tools, e.g. AZRG=$(terraform output -raw AZRG). No secret is output:
# get the queue connection string and function keys with the Azure CLI (see README.md).

output "AZRG" {
  description = "Resource group of this environment."
  value       = azurerm_resource_group.main.name
}

output "AZSA" {
  description = "Storage account that holds the job queue and its poison queue (and, with share_tier Standard, the data/jobs share)."
  value       = azurerm_storage_account.main.name
}

output "share_account" {
  description = "Storage account that holds the data/jobs share: AZSA, or with share_tier Premium the FileStorage account."
  value       = local.share_account_name
}

output "AZFN" {
  description = "Function app name (func azure functionapp publish $AZFN --python)."
  value       = azurerm_linux_function_app.main.name
}

output "share_name" {
  description = "Azure Files share mounted at mount_path: data/ and jobs/ go in it."
  value       = azurerm_storage_share.main.name
}

output "queue_name" {
  description = "The job queue (its poison queue is <queue_name>-poison)."
  value       = azurerm_storage_queue.jobs.name
}

output "mount_path" {
  description = "Where the share is mounted in the function app (DATA_PATH is <mount_path>/data, JOBS_PATH <mount_path>/jobs)."
  value       = var.mount_path
}

output "function_app_hostname" {
  description = "Default host name of the function app."
  value       = azurerm_linux_function_app.main.default_hostname
}

output "api_url" {
  description = "Base URL of the HTTP API."
  value       = "https://${azurerm_linux_function_app.main.default_hostname}/api"
}

output "enqueue_url" {
  description = "URL of the enqueue function (POST, with header x-functions-key)."
  value       = "https://${azurerm_linux_function_app.main.default_hostname}/api/enqueue"
}
