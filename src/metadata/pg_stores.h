// The PostgreSQL stores (issue 24), private to the metadata module: the Open* functions of the
// public headers hand postgres:// and postgresql:// URLs to these.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "metadata/account_store.h"
#include "metadata/catalog_store.h"
#include "metadata/deployment_store.h"
#include "metadata/task_store.h"

namespace mlaas::metadata {

// Whether `url` names a PostgreSQL database (postgres:// or postgresql://).
bool IsPostgresUrl(const std::string& url);

// Each connects, migrates (under the advisory lock) and returns the store.
Result<std::unique_ptr<TaskStore>> OpenPgTaskStore(const StoreOptions& options);
Result<std::unique_ptr<AccountStore>> OpenPgAccountStore(const StoreOptions& options);
Result<std::unique_ptr<CatalogStore>> OpenPgCatalogStore(const StoreOptions& options);
Result<std::unique_ptr<DeploymentStore>> OpenPgDeploymentStore(const StoreOptions& options);

}  // namespace mlaas::metadata
