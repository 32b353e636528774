# Every Azure name derives from project + env (see locals in main.tf). The validations below are chosen so
# that ANY accepted project and env give valid names:
#   storage account  "st<project><env>"      <= 2 + 12 + 10 = 24 lower-case letters and digits (Azure: 3-24)
#   premium files    "sf<project><env>"      the same length (only with share_tier Premium)
#   function app     "func-<project>-<env>"  <= 28 characters (Azure: 2-60; <= 32 keeps the Functions host id
#                                              unique, it is cut at 32 characters)
#   resource group, plan, Log Analytics, Application Insights: "<kind>-<project>-<env>", well within their limits.
# Storage account and function app names are global: pick an env suffix nobody else uses.

variable "project" {
  description = "Project part of every name: 3-12 lower-case letters and digits, starting with a letter."
  type        = string
  default     = "geneplexus"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,11}$", var.project))
    error_message = "The project must be 3-12 lower-case letters and digits, starting with a letter (it is part of the storage account name)."
  }
}

variable "env" {
  description = "Environment suffix of every name, e.g. dev1: 1-10 lower-case letters and digits."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{1,10}$", var.env))
    error_message = "The env suffix must be 1-10 lower-case letters and digits (no hyphens, underscores or capitals: storage account names allow none)."
  }
}

variable "location" {
  description = "Azure region, as its short name (az account list-locations -o table), e.g. eastus."
  type        = string
  default     = "eastus"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]+$", var.location))
    error_message = "The location must be a region's short name, e.g. eastus or westeurope."
  }
}

# --- Scale: the defaults come from benchmarks/capacity.py (docs/capacity.md), measured job figures x Azure's limits ---

variable "plan_sku" {
  description = "Elastic Premium plan size: EP1 (1 vCPU, 3.5 GB), EP2 (2 vCPU, 7 GB), EP3 (4 vCPU, 14 GB). EP2 (docs/capacity.md): a lone job keeps 1.7 cores busy (the model fits use both cores), so EP1 runs it twice as slowly; EP2 and EP1 cost about the same per job (USD 0.0002), EP3 too with two jobs at once; EP2 costs twice EP1 per hour."
  type        = string
  default     = "EP2"

  validation {
    condition     = contains(["EP1", "EP2", "EP3"], var.plan_sku)
    error_message = "The plan_sku must be EP1, EP2 or EP3 (Elastic Premium: runs are not cut at 10 minutes as on Consumption)."
  }
}

variable "maximum_elastic_worker_count" {
  description = "Most instances the plan may scale out to (maximum_elastic_worker_count: the plan's burst limit; each one bills while allocated). 16 (docs/capacity.md): a burst of 1,000 jobs on EP2 ends no sooner with more (the scale controller adds 4 instances per 30 s, so they arrive after the queue has drained), and the storage account's request rate runs out at 22 busy EP2 instances (an upper bound). Linux allows 100 in East US, 20 to 100 elsewhere: check your region."
  type        = number
  default     = 16

  validation {
    condition     = var.maximum_elastic_worker_count >= 1 && var.maximum_elastic_worker_count <= 100 && floor(var.maximum_elastic_worker_count) == var.maximum_elastic_worker_count
    error_message = "The maximum_elastic_worker_count must be a whole number from 1 to 100 (the most a Linux Elastic Premium plan has in any region)."
  }
}

variable "app_scale_limit" {
  description = "Most instances the function app itself may use (site_config.app_scale_limit, Azure's functionAppScaleLimit), at most maximum_elastic_worker_count. 16, the plan's maximum (docs/capacity.md): the app is alone in its plan and the standard share (large file shares) serves up to 22 busy EP2 instances. Lower it to spare a smaller share: a premium share of 100 GiB runs out of requests at 3."
  type        = number
  default     = 16

  validation {
    condition     = var.app_scale_limit >= 1 && var.app_scale_limit <= 100 && floor(var.app_scale_limit) == var.app_scale_limit
    error_message = "The app_scale_limit must be a whole number from 1 to 100."
  }
}

variable "elastic_instance_minimum" {
  description = "Always-ready instances of the app (site_config.elastic_instance_minimum), billed day and night; the plan bills at least one anyway. 1 (docs/capacity.md): one EP2 instance runs about 2,000 jobs an hour, far more than a test environment sees; each more costs about USD 315 a month. Bursts are served by scale-out."
  type        = number
  default     = 1

  validation {
    condition     = var.elastic_instance_minimum >= 1 && var.elastic_instance_minimum <= 20 && floor(var.elastic_instance_minimum) == var.elastic_instance_minimum
    error_message = "The elastic_instance_minimum must be a whole number from 1 to 20 (Azure's always-ready maximum per app; the plan bills at least one)."
  }
}

variable "pre_warmed_instance_count" {
  description = "Pre-warmed instances (site_config.pre_warmed_instance_count): started ahead, billed only while the app is active, so a scale-out does not wait for a cold start. 1, Azure's default (docs/capacity.md): the first instance of a scale-out is ready at once; more shortens a 1,000-job burst by seconds only. Left unset, azurerm sends 0."
  type        = number
  default     = 1

  validation {
    condition     = var.pre_warmed_instance_count >= 0 && var.pre_warmed_instance_count <= 10 && floor(var.pre_warmed_instance_count) == var.pre_warmed_instance_count
    error_message = "The pre_warmed_instance_count must be a whole number from 0 to 10."
  }
}

variable "share_tier" {
  description = "Azure Files tier of the data/jobs share. Standard (default, docs/capacity.md): the share sits in the main storage account with large file shares on, 20,000 requests/s, and bills per use. Premium: the share gets its own FileStorage account (account_tier Premium), provisioned at share_quota_gb (at least 100 GiB: 3,000 + 1 requests/s per GiB, so 3,100 at 100 GiB, and 110 MiB/s); the queue and the app's own storage stay on the standard account."
  type        = string
  default     = "Standard"

  validation {
    condition     = contains(["Standard", "Premium"], var.share_tier)
    error_message = "The share_tier must be Standard or Premium."
  }
}

variable "share_quota_gb" {
  description = "Quota of the Azure Files share that holds data/ (GenePlexus backend data) and jobs/, in GB; with share_tier Premium its provisioned size (at least 100), which sets its IOPS and throughput."
  type        = number
  default     = 100

  validation {
    condition     = var.share_quota_gb >= 1 && var.share_quota_gb <= 102400 && floor(var.share_quota_gb) == var.share_quota_gb
    error_message = "The share_quota_gb must be a whole number from 1 to 102400 (100 TiB: a standard share with large file shares, or a premium share)."
  }
}

variable "mount_path" {
  description = "Where the share is mounted in the function app; DATA_PATH is <mount>/data, JOBS_PATH <mount>/jobs."
  type        = string
  default     = "/mnt/geneplexus"

  validation {
    condition     = can(regex("^(/[A-Za-z0-9._-]+)+$", var.mount_path)) && !can(regex("^/(home|tmp)(/|$)", var.mount_path))
    error_message = "The mount_path must be an absolute path without a trailing slash, outside /home and /tmp (reserved by App Service)."
  }
}

variable "python_version" {
  description = "Python version of the function app (the mljob package needs 3.11 or newer)."
  type        = string
  default     = "3.11"

  validation {
    condition     = contains(["3.11", "3.12", "3.13"], var.python_version)
    error_message = "The python_version must be 3.11, 3.12 or 3.13."
  }
}

variable "queue_name" {
  description = "Name of the job queue (QUEUE_NAME); its poison queue is <queue_name>-poison."
  type        = string
  default     = "jobprocessing"

  validation {
    # Azure queue names: 3-63 lower-case letters, digits and single inner hyphens; 56 leaves room for "-poison".
    condition     = can(regex("^[a-z0-9](-?[a-z0-9])*$", var.queue_name)) && length(var.queue_name) >= 3 && length(var.queue_name) <= 56
    error_message = "The queue_name must be 3-56 lower-case letters, digits and single inner hyphens (its poison queue adds -poison)."
  }
}

variable "max_input_genes" {
  description = "MAX_INPUT_GENES: most distinct genes accepted in one gene list (the code's default is 10000)."
  type        = number
  default     = 10000

  validation {
    condition     = var.max_input_genes >= 1 && floor(var.max_input_genes) == var.max_input_genes
    error_message = "The max_input_genes must be a whole number of at least 1."
  }
}

variable "max_input_bytes" {
  description = "MAX_INPUT_BYTES: largest gene file accepted, in bytes (the code's default is 1000000)."
  type        = number
  default     = 1000000

  validation {
    condition     = var.max_input_bytes >= 1 && floor(var.max_input_bytes) == var.max_input_bytes
    error_message = "The max_input_bytes must be a whole number of at least 1."
  }
}

variable "lease_stale_seconds" {
  description = "LEASE_STALE_SECONDS: a run lease whose heartbeat is older than this is taken over (code default 120)."
  type        = number
  default     = 120

  validation {
    condition     = var.lease_stale_seconds >= 1 && floor(var.lease_stale_seconds) == var.lease_stale_seconds
    error_message = "The lease_stale_seconds must be a whole number of at least 1."
  }
}

variable "data_cache_mb" {
  description = "DATA_CACHE_MB: memory budget of the warm backend-data cache of one worker; 0 turns it off (code default 2048)."
  type        = number
  default     = 2048

  validation {
    condition     = var.data_cache_mb >= 0 && floor(var.data_cache_mb) == var.data_cache_mb
    error_message = "The data_cache_mb must be a whole number of at least 0."
  }
}

variable "preload" {
  description = "PRELOAD: backend data each worker loads into its warm cache when it starts, so the first job on a new instance is warm: comma-separated SPECIES:NETWORK:GSC, e.g. Human:STRING:Combined (empty: none; docs/benchmarks.md)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^$|^[A-Za-z]+:[A-Za-z]+:[A-Za-z]+(,[A-Za-z]+:[A-Za-z]+:[A-Za-z]+)*$", var.preload))
    error_message = "The preload must be empty or comma-separated SPECIES:NETWORK:GSC, e.g. Human:STRING:Combined."
  }
}

variable "fast_path" {
  description = "FAST_PATH: 1 runs GenePlexus 3.0.1's slow internal steps as mljob's faster equivalents, with byte-identical results (mljob/science/fast_path.py); 0 runs GenePlexus's own code (code default 1)."
  type        = number
  default     = 1

  validation {
    condition     = var.fast_path == 0 || var.fast_path == 1
    error_message = "The fast_path must be 1 (mljob's faster equivalents of GenePlexus's slow steps) or 0 (GenePlexus's own code)."
  }
}

variable "callback_allowed_hosts" {
  description = "CALLBACK_ALLOWED_HOSTS: comma-separated hosts job callbacks may go to (empty: any public host)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9.,:\\[\\]-]*$", var.callback_allowed_hosts))
    error_message = "The callback_allowed_hosts must be comma-separated host names or addresses."
  }
}

variable "job_timeout_seconds" {
  description = "JOB_TIMEOUT_SECONDS: a run going past this is stopped and ends `timeout`. Keep it below 3600 (Elastic Premium grants a running execution 60 minutes during scale-in) and below host.json's functionTimeout (2 h)."
  type        = number
  default     = 3000

  validation {
    condition     = var.job_timeout_seconds >= 1 && var.job_timeout_seconds < 3600 && floor(var.job_timeout_seconds) == var.job_timeout_seconds
    error_message = "The job_timeout_seconds must be a whole number from 1 to 3599: Elastic Premium gives a run at most 60 minutes during scale-in."
  }
}

variable "job_memory_mb" {
  description = "JOB_MEMORY_MB: most resident memory of a job's process (the warm data cache included), in MB; 0 = no limit of mljob's own."
  type        = number
  default     = 0

  validation {
    condition     = var.job_memory_mb >= 0 && floor(var.job_memory_mb) == var.job_memory_mb
    error_message = "The job_memory_mb must be a whole number of at least 0."
  }
}

variable "plan_price_per_hour" {
  description = "PLAN_PRICE_PER_HOUR: USD per instance-hour of the plan, for job_info.json's estimated_cost (default EP2: 2 vCPU x 0.173 + 7 GB x 0.0123, Linux, East US list price). Set it to your plan and region."
  type        = number
  default     = 0.432

  validation {
    condition     = var.plan_price_per_hour >= 0
    error_message = "The plan_price_per_hour must be a number of at least 0."
  }
}

variable "web_wait_seconds" {
  description = "WEB_WAIT_SECONDS: how long POST /api/gpz-ml waits for its job before answering 202 (< 230 s, Azure's HTTP limit)."
  type        = number
  default     = 200

  validation {
    condition     = var.web_wait_seconds >= 1 && var.web_wait_seconds <= 220 && floor(var.web_wait_seconds) == var.web_wait_seconds
    error_message = "The web_wait_seconds must be a whole number from 1 to 220: Azure cuts an HTTP call after 230 s."
  }
}

variable "web_max_waiting" {
  description = "WEB_MAX_WAITING: most POST /api/gpz-ml calls waiting at once on one instance; one more gets 503."
  type        = number
  default     = 20

  validation {
    condition     = var.web_max_waiting >= 1 && floor(var.web_max_waiting) == var.web_max_waiting
    error_message = "The web_max_waiting must be a whole number of at least 1."
  }
}

variable "cors_allowed_origins" {
  description = "Origins (e.g. https://geneplexus.example.org) whose pages may call the API from the browser: the web app's gpz-convert-ids and gpz-ml. Empty: none."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.cors_allowed_origins) == 0 || can(regex("^(\\*|https?://[A-Za-z0-9.-]+(:[0-9]+)?)(,(\\*|https?://[A-Za-z0-9.-]+(:[0-9]+)?))*$", join(",", var.cors_allowed_origins)))
    error_message = "Each of cors_allowed_origins must be * or an origin such as https://app.example.org (scheme, host, optional port; no path)."
  }
}

variable "log_retention_days" {
  description = "How long the Log Analytics workspace (and so Application Insights) keeps logs, in days."
  type        = number
  default     = 30

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "The log_retention_days must be from 30 to 730."
  }
}

variable "tags" {
  description = "Extra tags for every resource (project, env and managed_by are always set)."
  type        = map(string)
  default     = {}
}
