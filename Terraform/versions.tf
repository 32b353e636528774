terraform {
  # Nothing newer than 1.5 is used: every validation block refers only to its own variable.
  required_version = ">= 1.5"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.46 brought `storage_account_id` to azurerm_storage_queue (queues and the share are then created through
      # Azure Resource Manager, no data-plane access needed from the machine running terraform); 4.47 fixed
      # azurerm_storage_account when its deprecated inline queue_properties block is left out, as here.
      version = "~> 4.47"
    }
  }
}
