// Every object under a key prefix, all pages of a store's listing: one loop for the model
// loaders, the model import and the image datasets.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "storage/object_store.h"

namespace mlaas::storage {

// The objects under `prefix`, in key order. ResourceExhausted ("more than N files under P")
// once there are more than `max_objects`.
Result<std::vector<ObjectInfo>> ListAllObjects(ObjectStore& store, const std::string& prefix, size_t max_objects);

}  // namespace mlaas::storage
