#include "storage/listing.h"

namespace mlaas::storage {

Result<std::vector<ObjectInfo>> ListAllObjects(ObjectStore& store, const std::string& prefix, size_t max_objects) {
  std::vector<ObjectInfo> out;
  ListOptions opts;
  opts.prefix = prefix;
  int empty_pages = 0;
  for (;;) {
    MLAAS_ASSIGN_OR_RETURN(ListResult page, store.List(opts));
    for (auto& o : page.objects) out.push_back(std::move(o));
    if (out.size() > max_objects) return ResourceExhausted("more than " + std::to_string(max_objects) + " files under " + prefix);
    if (!page.is_truncated) return out;
    // A store that says "more" without moving on (the same token, or none) would be listed
    // forever: an error, as is a long run of empty pages.
    if (page.next_continuation_token.empty() || page.next_continuation_token == opts.continuation_token)
      return Unavailable("listing " + prefix + ": the store answered a truncated page without a new continuation token");
    empty_pages = page.objects.empty() ? empty_pages + 1 : 0;
    if (empty_pages > 100) return Unavailable("listing " + prefix + ": the store answered 100 empty pages in a row");
    opts.continuation_token = page.next_continuation_token;
  }
}

}  // namespace mlaas::storage
