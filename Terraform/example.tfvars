# Example variables: terraform apply -var-file=example.tfvars (copy it to <env>.tfvars to change it; *.tfvars other
# than this one are git-ignored). Never put a key or connection string here: none is needed.
env            = "dev1"
location       = "eastus"
plan_sku       = "EP2"
max_instances  = 3
share_quota_gb = 100
mount_path     = "/mnt/geneplexus"
python_version = "3.11"
queue_name     = "jobprocessing"

tags = {
  owner = "geneplexus-team"
}
