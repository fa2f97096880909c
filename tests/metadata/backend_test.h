// The fixture of the store tests that run on both backends: SQLite in a temporary file, and a
// database of its own on a PostgreSQL 15 server started for the suite on loopback
// (tests/testutil/postgres_server.h).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "metadata/task_store.h"
#include "testutil/postgres_server.h"
#include "testutil/temp_dir.h"

namespace mlaas::metadata {

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() != "postgresql") {
      url_ = (dir_ / "mlaas.db").string();
      return;
    }
    auto url = testing::FreshTestDatabase();
    ASSERT_TRUE(url.has_value()) << url.error().ToString();
    url_ = *url;
  }

  // A store of its own (its own connections, as another server process would have), opened by
  // `open` (OpenCatalogStore, OpenDeploymentStore, ...).
  template <typename Store>
  std::unique_ptr<Store> OpenWith(Result<std::unique_ptr<Store>> (*open)(const StoreOptions&)) {
    StoreOptions o;
    o.url = url_;
    auto s = open(o);
    EXPECT_TRUE(s.has_value()) << s.error().ToString();
    return s.has_value() ? std::move(s).value() : nullptr;
  }

  mlaas::testing::TempDir dir_;
  std::string url_;
};

inline std::string BackendName(const ::testing::TestParamInfo<std::string>& p) { return p.param; }

}  // namespace mlaas::metadata
