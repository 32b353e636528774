terraform {
  # Nothing newer than 1.5 is used: every validation block refers only to its own variable.
  required_version = ">= 1.5"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.46 brought `storage_account_id` to azurerm_storage_queue (queues and the share are created through Azure
      # Resource Manager); 4.47 fixed azurerm_storage_account when its deprecated inline queue_properties block is
      # left out, as here; 4.54 brought `storage_share_url` to azurerm_storage_share_directory, the data-plane URL a
      # share created from `storage_account_id` needs (its `storage_share_id` wanted an id such a share no longer
      # has). The data/ and jobs/ folders are created on the share's data plane, over HTTPS with the account key.
      version = "~> 4.54"
    }
  }
}
