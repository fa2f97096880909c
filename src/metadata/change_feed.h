// What a store's Subscribe returns (task_store.h, deployment_store.h): news of the changes other
// processes write arrive, on a thread of the feed's, until it is destroyed. PostgreSQL's is a
// LISTEN connection (pg_db.h, PgListener); stores that cannot tell return none and callers poll.
#pragma once

namespace mlaas::metadata {

class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
};

}  // namespace mlaas::metadata
