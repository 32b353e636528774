# mljob on Azure Functions: one resource group per environment holding
#   - a storage account: the Functions host's own storage (AzureWebJobsStorage), the job queue and its poison queue,
#     and the Azure Files share mounted at var.mount_path with data/ (GenePlexus backend data) and jobs/ (job folders);
#     with share_tier Premium the share is in a second, FileStorage account instead (premium files need one);
#   - Log Analytics + workspace-based Application Insights;
#   - a Linux Elastic Premium plan and the Python function app (function_app.py at the repository root), scaled by the
#     variables whose defaults docs/capacity.md (benchmarks/capacity.py) derives from measured job figures.
# No secret is written in any file here: keys and connection strings exist only in the Terraform state (keep it
# private: it is git-ignored in this folder) and in the function app's settings.

provider "azurerm" {
  # azurerm 4.x needs a subscription: export ARM_SUBSCRIPTION_ID=$(az account show --query id -o tsv)
  features {
    resource_group {
      # The group belongs to this environment alone; `terraform destroy` removes it with anything Azure added
      # to it on its own (e.g. Application Insights' smart detection rules).
      prevent_deletion_if_contains_resources = false
    }
    application_insights {
      # No "Failure Anomalies" alert rule created behind Terraform's back.
      disable_generated_rule = true
    }
    log_analytics_workspace {
      # A test environment is destroyed and re-created: do not leave a soft-deleted workspace holding the name.
      permanently_delete_on_destroy = true
    }
  }
}

locals {
  suffix               = "${var.project}-${var.env}"
  resource_group_name  = "rg-${local.suffix}"
  storage_account_name = "st${var.project}${var.env}"
  files_account_name   = "sf${var.project}${var.env}"
  function_app_name    = "func-${local.suffix}"
  plan_name            = "asp-${local.suffix}"
  log_analytics_name   = "log-${local.suffix}"
  app_insights_name    = "appi-${local.suffix}"
  share_name           = var.project
  poison_queue_name    = "${var.queue_name}-poison"

  # One share mount holds both folders, as in the predecessor: a job reads data/ and writes jobs/ on the same share.
  # Terraform creates both folders in the share (azurerm_storage_share_directory below) from the same names.
  data_dir  = "data"
  jobs_dir  = "jobs"
  data_path = "${var.mount_path}/${local.data_dir}"
  jobs_path = "${var.mount_path}/${local.jobs_dir}"

  # The account that holds the share: the main (standard) account, or with share_tier Premium the FileStorage one.
  premium_share      = var.share_tier == "Premium"
  share_account_id   = local.premium_share ? azurerm_storage_account.files[0].id : azurerm_storage_account.main.id
  share_account_name = local.premium_share ? azurerm_storage_account.files[0].name : azurerm_storage_account.main.name
  share_account_key  = local.premium_share ? azurerm_storage_account.files[0].primary_access_key : azurerm_storage_account.main.primary_access_key

  tags = merge(var.tags, {
    project    = var.project
    env        = var.env
    managed_by = "terraform"
  })
}

resource "azurerm_resource_group" "main" {
  name     = local.resource_group_name
  location = var.location
  tags     = local.tags
}

# --- Storage: host storage, job queue + poison queue, the data/jobs share -------------------------------------------

resource "azurerm_storage_account" "main" {
  #checkov:skip=CKV_AZURE_206:Test environment: locally redundant storage. Nothing here is irreplaceable: backend data are re-downloaded from GenePlexus's source and every job can be re-run from its folder's inputs; geo-redundant copies would about double the storage cost.
  #checkov:skip=CKV_AZURE_59:The function app (no VNet integration), its Azure Files mount and the web app reach the queue and the share over the public endpoint; closing it needs VNet integration, private endpoints and a VNet for the web app, out of scope for a test environment. Every access needs the account key over HTTPS with TLS 1.2.
  #checkov:skip=CKV_AZURE_33:Queue logging (read, write, delete; 7 days) is configured by azurerm_storage_account_queue_properties.main below, the resource azurerm 4.x recommends over the deprecated inline queue_properties block; checkov 3.3 does not look at that resource.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need a VNet, VNet integration of the function app and private DNS zones: out of scope for a test environment.
  #checkov:skip=CKV2_AZURE_1:Customer-managed keys need a Key Vault with purge protection and key rotation; Microsoft-managed encryption at rest is enough for public GenePlexus data and test jobs.
  #checkov:skip=CKV2_AZURE_40:Shared keys are required: a Linux Elastic Premium app's content share (WEBSITE_CONTENTAZUREFILECONNECTIONSTRING) and its Azure Files mount only take an account key, and QUEUECONNECTIONSTRING is the account-key connection string (no SAS token with a built-in end date).
  name                     = local.storage_account_name
  resource_group_name      = azurerm_resource_group.main.name
  location                 = azurerm_resource_group.main.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = "LRS"
  access_tier              = "Hot"

  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = true # see CKV2_AZURE_40 above
  public_network_access_enabled     = true # see CKV_AZURE_59 above
  cross_tenant_replication_enabled  = false
  local_user_enabled                = false # no SFTP/local users
  infrastructure_encryption_enabled = true
  # A standard share gets 20,000 requests/s and up to the account's throughput instead of 1,000 requests/s and
  # 60 MiB/s: the jobs' file operations would use up the default at about 5 busy instances (docs/capacity.md).
  # Costs nothing; it cannot be turned off again.
  large_file_share_enabled = true

  # Nothing here hands out SAS tokens; should someone sign one by hand, a long-lived one is logged.
  sas_policy {
    expiration_period = "1.00:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  # Soft delete for the share: a job folder or backend file removed by mistake can be restored for 7 days.
  share_properties {
    retention_policy {
      days = 7
    }
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = can(regex("^[a-z0-9]{3,24}$", local.storage_account_name))
      error_message = "The storage account name must be 3-24 lower-case letters and digits."
    }
  }
}

# Storage Analytics logging of every queue read, write and delete (the job queue's history), kept 7 days.
resource "azurerm_storage_account_queue_properties" "main" {
  storage_account_id = azurerm_storage_account.main.id

  logging {
    read                  = true
    write                 = true
    delete                = true
    version               = "1.0"
    retention_policy_days = 7
  }
}

resource "azurerm_storage_queue" "jobs" {
  name               = var.queue_name
  storage_account_id = azurerm_storage_account.main.id
}

# The Functions host moves a message here after host.json's maxDequeueCount failed tries; creating it up front
# makes it visible (and removable) with the rest of the environment.
resource "azurerm_storage_queue" "poison" {
  name               = local.poison_queue_name
  storage_account_id = azurerm_storage_account.main.id
}

# share_tier Premium only: premium (SSD) Azure Files needs a FileStorage account with account_tier Premium, which
# holds nothing but file shares; the queue and the app's own storage stay on the standard account above.
resource "azurerm_storage_account" "files" {
  #checkov:skip=CKV_AZURE_206:Test environment: locally redundant premium files. Backend data are re-downloaded from GenePlexus's source and every job can be re-run from its inputs; zone-redundant premium files cost more.
  #checkov:skip=CKV_AZURE_59:The function app (no VNet integration) mounts the share over the public endpoint; closing it needs VNet integration and private endpoints, out of scope for a test environment. Access needs the account key over HTTPS with TLS 1.2.
  #checkov:skip=CKV_AZURE_33:A FileStorage account holds file shares only: it has no queue service whose requests could be logged.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need a VNet, VNet integration of the function app and private DNS zones: out of scope for a test environment.
  #checkov:skip=CKV2_AZURE_1:Customer-managed keys need a Key Vault with purge protection and key rotation; Microsoft-managed encryption at rest is enough for public GenePlexus data and test jobs.
  #checkov:skip=CKV2_AZURE_40:Shared keys are required: the function app's Azure Files mount only takes an account key.
  #checkov:skip=CKV2_AZURE_38:Blob soft delete cannot exist on a FileStorage account (no blobs; checkov 3.3 fails every FileStorage account here); the share's own soft delete is on (share_properties, 7 days).
  count                    = local.premium_share ? 1 : 0
  name                     = local.files_account_name
  resource_group_name      = azurerm_resource_group.main.name
  location                 = azurerm_resource_group.main.location
  account_kind             = "FileStorage"
  account_tier             = "Premium"
  account_replication_type = "LRS"

  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = true # see CKV2_AZURE_40 above
  public_network_access_enabled     = true # see CKV_AZURE_59 above
  cross_tenant_replication_enabled  = false
  local_user_enabled                = false
  infrastructure_encryption_enabled = true

  sas_policy {
    expiration_period = "1.00:00:00"
    expiration_action = "Log"
  }

  share_properties {
    retention_policy {
      days = 7
    }
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = can(regex("^[a-z0-9]{3,24}$", local.files_account_name))
      error_message = "The premium files storage account name must be 3-24 lower-case letters and digits."
    }
  }
}

resource "azurerm_storage_share" "main" {
  name               = local.share_name
  storage_account_id = local.share_account_id
  quota              = var.share_quota_gb

  lifecycle {
    precondition {
      condition     = !local.premium_share || var.share_quota_gb >= 100
      error_message = "A premium share is provisioned at 100 GiB at least: set share_quota_gb to 100 or more."
    }
  }
}

# data/ and jobs/ exist from the start: /api/health answers 503 (and the platform's health check evicts the instance)
# while DATA_PATH or JOBS_PATH is missing. Created through the share's data-plane URL with the account key.
resource "azurerm_storage_share_directory" "data" {
  name              = local.data_dir
  storage_share_url = azurerm_storage_share.main.url
}

resource "azurerm_storage_share_directory" "jobs" {
  name              = local.jobs_dir
  storage_share_url = azurerm_storage_share.main.url
}

# --- Monitoring --------------------------------------------------------------------------------------------------------

resource "azurerm_log_analytics_workspace" "main" {
  name                = local.log_analytics_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "main" {
  name                = local.app_insights_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  workspace_id        = azurerm_log_analytics_workspace.main.id
  application_type    = "web"
  tags                = local.tags
}

# --- The function app ----------------------------------------------------------------------------------------------

resource "azurerm_service_plan" "main" {
  #checkov:skip=CKV_AZURE_212:Test environment: one always-ready instance (more are added on demand up to var.maximum_elastic_worker_count); an always-on second instance for failover would double the cost.
  #checkov:skip=CKV_AZURE_225:Zone redundancy keeps several instances running at all times, spread over availability zones: too costly for a test environment.
  name                         = local.plan_name
  resource_group_name          = azurerm_resource_group.main.name
  location                     = azurerm_resource_group.main.location
  os_type                      = "Linux"
  sku_name                     = var.plan_sku
  maximum_elastic_worker_count = var.maximum_elastic_worker_count
  tags                         = local.tags
}

resource "azurerm_linux_function_app" "main" {
  #checkov:skip=CKV_AZURE_221:The web app and developers call the HTTP API over the internet with function keys; closing public access needs private endpoints and a VNet for the web app.
  name                = local.function_app_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  service_plan_id     = azurerm_service_plan.main.id

  # AzureWebJobsStorage (the host's leases, keys and timers) and, on Elastic Premium, the content share: set by
  # azurerm from these two.
  storage_account_name       = azurerm_storage_account.main.name
  storage_account_access_key = azurerm_storage_account.main.primary_access_key

  functions_extension_version   = "~4"
  https_only                    = true
  public_network_access_enabled = true  # see CKV_AZURE_221 above
  builtin_logging_enabled       = false # logs go to Application Insights, not AzureWebJobsDashboard
  # Callers authenticate with function keys (x-functions-key), as the web app does: no TLS client certificates
  # (requiring one would break the web app's and curl calls) and no App Service Authentication (Entra ID tokens).
  client_certificate_enabled = false

  ftp_publish_basic_authentication_enabled = false
  # Kept on: `func azure functionapp publish` from Core Tools versions that fetch SCM publishing credentials needs
  # it. Turn it off once every deployer's Core Tools deploys with an Entra ID token.
  webdeploy_publish_basic_authentication_enabled = true

  identity {
    type = "SystemAssigned"
  }

  site_config {
    minimum_tls_version     = "1.2"
    scm_minimum_tls_version = "1.2"
    ftps_state              = "Disabled"
    http2_enabled           = true

    application_insights_connection_string = azurerm_application_insights.main.connection_string

    # Anonymous GET /api/health answers 503 when DATA_PATH or JOBS_PATH is not reachable (e.g. the share did
    # not mount): such an instance is taken out of the load balancer and replaced.
    health_check_path                 = "/api/health"
    health_check_eviction_time_in_min = 10

    # Scale (docs/capacity.md): always-ready instances (the plan bills at least one), a pre-warmed buffer so that a
    # scale-out does not wait for a cold start, and the app's own scale limit within the plan's maximum.
    elastic_instance_minimum  = var.elastic_instance_minimum
    pre_warmed_instance_count = var.pre_warmed_instance_count
    app_scale_limit           = var.app_scale_limit

    application_stack {
      python_version = var.python_version
    }

    # The web app calls POST /api/gpz-convert-ids and /api/gpz-ml from the browser: the platform answers the
    # CORS preflight and adds Access-Control-Allow-Origin for these origins only (`mljob serve` does the same
    # from CORS_ALLOWED_ORIGINS). No credentials: the browser sends no key.
    cors {
      allowed_origins     = var.cors_allowed_origins
      support_credentials = false
    }
  }

  # Every setting mljob reads in the cloud (mljob/settings.py). FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
  # AzureWebJobsStorage, APPLICATIONINSIGHTS_CONNECTION_STRING and WEBSITE_CONTENT* are set by azurerm itself.
  # Not here, on purpose: MLJOB_FUNCTION_KEY, MESSAGE_LEASE_SECONDS and CORS_ALLOWED_ORIGINS are read only by
  # `mljob serve`, the local development host; in Azure the Functions host checks function keys and leases queue
  # messages itself, and the platform answers CORS (site_config.cors below).
  app_settings = {
    DATA_PATH = local.data_path
    JOBS_PATH = local.jobs_path
    # The account-key connection string of the account that holds the queue: it does not run out (the
    # predecessor's Terraform built it from a SAS token with a hard-coded end date).
    QUEUECONNECTIONSTRING  = azurerm_storage_account.main.primary_connection_string
    QUEUE_NAME             = azurerm_storage_queue.jobs.name
    MAX_INPUT_GENES        = tostring(var.max_input_genes)
    MAX_INPUT_BYTES        = tostring(var.max_input_bytes)
    LEASE_STALE_SECONDS    = tostring(var.lease_stale_seconds)
    DATA_CACHE_MB          = tostring(var.data_cache_mb)
    PRELOAD                = var.preload
    FAST_PATH              = tostring(var.fast_path)
    CALLBACK_ALLOWED_HOSTS = var.callback_allowed_hosts
    JOB_TIMEOUT_SECONDS    = tostring(var.job_timeout_seconds)
    JOB_MEMORY_MB          = tostring(var.job_memory_mb)
    PLAN_PRICE_PER_HOUR    = tostring(var.plan_price_per_hour)
    WEB_WAIT_SECONDS       = tostring(var.web_wait_seconds)
    WEB_MAX_WAITING        = tostring(var.web_max_waiting)
  }

  # The share with data/ and jobs/, mounted read-write at var.mount_path (from the premium account with share_tier
  # Premium).
  storage_account {
    name         = local.share_name
    type         = "AzureFiles"
    account_name = local.share_account_name
    share_name   = azurerm_storage_share.main.name
    access_key   = local.share_account_key
    mount_path   = var.mount_path
  }

  tags = local.tags

  lifecycle {
    # Settings that `func azure functionapp publish` (remote build) may add; Terraform leaves them alone.
    ignore_changes = [
      app_settings["WEBSITE_RUN_FROM_PACKAGE"],
      app_settings["SCM_DO_BUILD_DURING_DEPLOYMENT"],
      app_settings["ENABLE_ORYX_BUILD"],
    ]

    precondition {
      condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$", local.function_app_name))
      error_message = "The function app name must be 2-32 lower-case letters, digits and hyphens, not starting or ending with a hyphen."
    }

    precondition {
      condition     = var.app_scale_limit <= var.maximum_elastic_worker_count && var.elastic_instance_minimum <= var.maximum_elastic_worker_count
      error_message = "The app_scale_limit and elastic_instance_minimum must not exceed maximum_elastic_worker_count (the plan's maximum)."
    }
  }
}
