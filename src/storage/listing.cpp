#include "storage/listing.h"

namespace mlaas::storage {

Result<std::vector<ObjectInfo>> ListAllObjects(ObjectStore& store, const std::string& prefix, size_t max_objects) {
  std::vector<ObjectInfo> out;
  ListOptions opts;
  opts.prefix = prefix;
  for (;;) {
    MLAAS_ASSIGN_OR_RETURN(ListResult page, store.List(opts));
    for (auto& o : page.objects) out.push_back(std::move(o));
    if (out.size() > max_objects) return ResourceExhausted("more than " + std::to_string(max_objects) + " files under " + prefix);
    if (!page.is_truncated) return out;
    opts.continuation_token = page.next_continuation_token;
  }
}

}  // namespace mlaas::storage
