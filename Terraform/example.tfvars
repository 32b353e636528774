# Example variables: terraform apply -var-file=example.tfvars (copy it to <env>.tfvars to change it; *.tfvars other
# than this one are git-ignored). Never put a key or connection string here: none is needed.
env            = "dev1"
location       = "eastus"
plan_sku       = "EP2"
share_tier     = "Standard"
share_quota_gb = 100

# Scale (defaults from docs/capacity.md)
maximum_elastic_worker_count = 16
app_scale_limit              = 16
elastic_instance_minimum     = 1
pre_warmed_instance_count    = 1

mount_path     = "/mnt/geneplexus"
python_version = "3.11"
queue_name     = "jobprocessing"

tags = {
  owner = "geneplexus-team"
}
