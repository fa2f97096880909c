#include "vector/index_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

namespace mlaas::vector {

void Fnv1a64::Update(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = h_;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  h_ = h;
}

std::string Fnv1a64::Text() const {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "fnv1a64:";
  for (int shift = 60; shift >= 0; shift -= 4) out += kHex[(h_ >> shift) & 0xf];
  return out;
}

namespace {

constexpr uint32_t FourCc(const char (&s)[5]) {
  return static_cast<uint32_t>(static_cast<unsigned char>(s[0])) |
         static_cast<uint32_t>(static_cast<unsigned char>(s[1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(s[2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(s[3])) << 24;
}

constexpr int32_t kMetricInnerProduct = 0, kMetricL2 = 1;  // faiss::MetricType
constexpr uint64_t kMaxIvfLists = 1 << 20;                 // IndexSpec's nlist bound
constexpr uint64_t kMaxUnbackedIvfLists = 1 << 16;         // an untrained IVF's lists hold no bytes in the file

// The file read front to back through a buffer; every failure is recorded once in `error`.
class Cursor {
 public:
  Cursor(const ReadAt& read, uint64_t size) : read_(read), size_(size) {}

  uint64_t remaining() const { return size_ - pos_; }
  bool ok() const { return error_.ok(); }
  const Status& error() const { return error_; }

  bool Fail(const std::string& what) {
    if (error_.ok()) error_ = InvalidArgument("index.faiss is not a vector-store index this platform reads: " + what);
    return false;
  }

  bool Bytes(void* out, size_t n, const char* what) {
    if (!ok()) return false;
    if (n > remaining()) return Fail(std::string("the file ends inside ") + what);
    auto* dst = static_cast<unsigned char*>(out);
    while (n > 0) {
      if (at_ == buffer_.size()) {
        buffer_.resize(static_cast<size_t>(std::min<uint64_t>(64 << 10, size_ - pos_)));
        if (!read_(pos_, buffer_.data(), buffer_.size())) return Fail("the file cannot be read");
        at_ = 0;
      }
      const size_t take = std::min(n, buffer_.size() - at_);
      std::memcpy(dst, buffer_.data() + at_, take);
      at_ += take;
      pos_ += take;
      dst += take;
      n -= take;
    }
    return true;
  }

  template <class T>
  bool Get(T* out, const char* what) {
    return Bytes(out, sizeof(T), what);
  }

  bool Skip(uint64_t n, const char* what) {
    if (!ok()) return false;
    if (n > remaining()) return Fail(std::string("the file ends inside ") + what);
    const uint64_t in_buffer = std::min<uint64_t>(n, buffer_.size() - at_);
    at_ += static_cast<size_t>(in_buffer);
    if (n > in_buffer) {  // past the buffer: drop it
      buffer_.clear();
      at_ = 0;
    }
    pos_ += n;
    return true;
  }

  // A FAISS vector's element count, checked against the bytes left: count * elem <= remaining.
  bool Count(size_t elem, uint64_t* count, const char* what) {
    if (!Get(count, what)) return false;
    if (*count > remaining() / elem)
      return Fail(std::string(what) + " declares " + std::to_string(*count) + " entries of " + std::to_string(elem) +
                  " bytes but only " + std::to_string(remaining()) + " bytes follow");
    return true;
  }

 private:
  const ReadAt& read_;
  uint64_t size_, pos_ = 0;
  std::vector<unsigned char> buffer_;
  size_t at_ = 0;
  Status error_ = Status::Ok();
};

struct Header {
  int32_t d = 0;
  int64_t ntotal = 0;
  bool trained = false;
};

class Walker {
 public:
  Walker(Cursor& c, const IndexFileExpect& e) : c_(c), e_(e) {}

  bool Root() {
    uint32_t h = 0;
    Header header;
    if (!c_.Get(&h, "the index type")) return false;
    if (h != FourCc("IxM2")) return c_.Fail("the outer index is not an IndexIDMap2");
    if (!ReadHeader(&header, "IndexIDMap2")) return false;
    Header inner;
    if (e_.type == "Flat") {
      if (!Flat(&inner, "IndexFlat")) return false;
    } else if (e_.type == "HNSW") {
      if (!Hnsw(&inner)) return false;
    } else if (e_.type == "IVF") {
      if (!Ivf(&inner)) return false;
    } else {
      return c_.Fail("the manifest's index type is not Flat, HNSW or IVF");
    }
    if (inner.ntotal != header.ntotal) return c_.Fail("the id map and its index hold different counts");
    uint64_t ids = 0;
    if (!c_.Count(8, &ids, "the id map")) return false;
    if (ids != static_cast<uint64_t>(header.ntotal)) return c_.Fail("the id map does not hold one id per vector");
    for (uint64_t i = 0; i < ids; ++i) {
      int64_t id = 0;
      if (!c_.Get(&id, "the id map")) return false;
      if (id < 0 || id == INT64_MAX) return c_.Fail("the id map holds an id out of range");
    }
    if (c_.ok() && c_.remaining() != 0) return c_.Fail(std::to_string(c_.remaining()) + " bytes follow the index");
    return c_.ok();
  }

 private:
  bool ReadHeader(Header* out, const char* what) {
    int64_t dummy = 0;
    uint8_t trained = 0;
    int32_t metric = 0;
    if (!c_.Get(&out->d, what) || !c_.Get(&out->ntotal, what) || !c_.Get(&dummy, what) || !c_.Get(&dummy, what) ||
        !c_.Get(&trained, what) || !c_.Get(&metric, what))
      return false;
    if (out->d != e_.dim)
      return c_.Fail(std::string(what) + " has dimension " + std::to_string(out->d) + ", the manifest " +
                     std::to_string(e_.dim));
    if (out->ntotal < 0) return c_.Fail(std::string(what) + " declares a negative count");
    if (trained > 1) return c_.Fail(std::string(what) + " has a corrupt header");
    if (metric != (e_.inner_product ? kMetricInnerProduct : kMetricL2))
      return c_.Fail(std::string(what) + "'s metric is not the manifest's");
    out->trained = trained == 1;
    return true;
  }

  // IndexFlatL2 / IndexFlatIP: the header, then ntotal * d floats.
  bool Flat(Header* out, const char* what) {
    uint32_t h = 0;
    if (!c_.Get(&h, what)) return false;
    if (h != (e_.inner_product ? FourCc("IxFI") : FourCc("IxF2")))
      return c_.Fail(std::string(what) + " is not a flat index of the manifest's metric");
    if (!ReadHeader(out, what)) return false;
    uint64_t floats = 0;
    if (!c_.Count(4, &floats, what)) return false;
    if (floats != static_cast<uint64_t>(out->ntotal) * static_cast<uint64_t>(out->d))  // both bounded by the file
      return c_.Fail(std::string(what) + " does not hold " + std::to_string(out->ntotal) + " vectors");
    return c_.Skip(floats * 4, what);
  }

  // IndexHNSWFlat: the header, the graph, then its flat storage.
  bool Hnsw(Header* out) {
    uint32_t h = 0;
    if (!c_.Get(&h, "the HNSW index")) return false;
    if (h != FourCc("IHNf")) return c_.Fail("the index is not an IndexHNSWFlat");
    if (!ReadHeader(out, "the HNSW index")) return false;
    const uint64_t n = static_cast<uint64_t>(out->ntotal);
    uint64_t probas = 0, cum_count = 0, level_count = 0, offset_count = 0, neighbor_count = 0;
    if (!c_.Count(8, &probas, "the HNSW level probabilities") || !c_.Skip(probas * 8, "the HNSW level probabilities"))
      return false;
    if (!c_.Count(4, &cum_count, "the HNSW neighbour counts")) return false;
    if (probas < 1 || cum_count != probas + 1) return c_.Fail("the HNSW level tables disagree");
    std::vector<int32_t> cum(cum_count);
    for (auto& v : cum)
      if (!c_.Get(&v, "the HNSW neighbour counts")) return false;
    if (cum[0] != 0) return c_.Fail("the HNSW neighbour counts do not start at 0");
    for (size_t i = 1; i < cum.size(); ++i)
      if (cum[i] < cum[i - 1] || cum[i] > (1 << 16)) return c_.Fail("the HNSW neighbour counts are corrupt");
    if (!c_.Count(4, &level_count, "the HNSW levels")) return false;
    if (level_count != n) return c_.Fail("the HNSW graph does not hold one level per vector");
    std::vector<int32_t> levels(level_count);
    int32_t top = 0;
    for (auto& v : levels) {
      if (!c_.Get(&v, "the HNSW levels")) return false;
      if (v < 1 || static_cast<uint64_t>(v) >= cum_count) return c_.Fail("an HNSW level is out of range");
      top = std::max(top, v);
    }
    if (!c_.Count(8, &offset_count, "the HNSW offsets")) return false;
    if (offset_count != n + 1) return c_.Fail("the HNSW graph does not hold one offset per vector");
    uint64_t offset = 0, expected = 0;
    for (uint64_t i = 0; i <= n; ++i) {
      if (!c_.Get(&offset, "the HNSW offsets")) return false;
      if (offset != expected) return c_.Fail("the HNSW offsets do not match the levels");
      if (i < n) expected += static_cast<uint64_t>(cum[static_cast<size_t>(levels[i])]);
    }
    if (!c_.Count(4, &neighbor_count, "the HNSW neighbours")) return false;
    if (neighbor_count != expected) return c_.Fail("the HNSW graph does not hold the neighbours its offsets say");
    // Each node's neighbours, level by level: ids in 0..ntotal-1 (or -1, an empty slot) of
    // nodes that reach that level, so a search never leaves the graph.
    for (uint64_t i = 0; i < n; ++i) {
      for (int32_t level = 0; level < levels[i]; ++level) {
        for (int32_t j = cum[static_cast<size_t>(level)]; j < cum[static_cast<size_t>(level) + 1]; ++j) {
          int32_t v = 0;
          if (!c_.Get(&v, "the HNSW neighbours")) return false;
          if (v == -1) continue;
          if (v < 0 || static_cast<uint64_t>(v) >= n) return c_.Fail("an HNSW neighbour id is out of range");
          if (levels[static_cast<size_t>(v)] <= level) return c_.Fail("an HNSW neighbour is not on its level");
        }
      }
    }
    int32_t entry = 0, max_level = 0, ef_construction = 0, ef_search = 0, upper_beam = 0;
    if (!c_.Get(&entry, "the HNSW graph") || !c_.Get(&max_level, "the HNSW graph") ||
        !c_.Get(&ef_construction, "the HNSW graph") || !c_.Get(&ef_search, "the HNSW graph") ||
        !c_.Get(&upper_beam, "the HNSW graph"))
      return false;
    if (n == 0 ? entry != -1 || max_level != -1
               : entry < 0 || static_cast<uint64_t>(entry) >= n || max_level != top - 1 ||
                     levels[static_cast<size_t>(entry)] != top)
      return c_.Fail("the HNSW entry point is corrupt");
    if (ef_construction < 1 || ef_construction > (1 << 16) || ef_search < 1 || upper_beam != 1)
      return c_.Fail("the HNSW search settings are corrupt");
    Header storage;
    if (!Flat(&storage, "the HNSW storage")) return false;
    if (storage.ntotal != out->ntotal) return c_.Fail("the HNSW graph and its storage hold different counts");
    return true;
  }

  // IndexIVFFlat: the header, nlist, nprobe, the quantizer, an empty direct map, then the
  // inverted lists (sizes, then each list's codes and ids).
  bool Ivf(Header* out) {
    uint32_t h = 0;
    if (!c_.Get(&h, "the IVF index")) return false;
    if (h != FourCc("IwFl")) return c_.Fail("the index is not an IndexIVFFlat");
    if (!ReadHeader(out, "the IVF index")) return false;
    uint64_t nlist = 0, nprobe = 0;
    if (!c_.Get(&nlist, "the IVF index") || !c_.Get(&nprobe, "the IVF index")) return false;
    if (nlist < 1 || nlist > kMaxIvfLists) return c_.Fail("the IVF list count is out of range");
    Header quantizer;
    if (!Flat(&quantizer, "the IVF quantizer")) return false;
    // Trained: one centroid per list, so the lists' bookkeeping is paid for by the file.
    if (out->trained ? static_cast<uint64_t>(quantizer.ntotal) != nlist
                     : quantizer.ntotal != 0 || out->ntotal != 0 || nlist > kMaxUnbackedIvfLists)
      return c_.Fail("the IVF quantizer does not match its lists");
    uint8_t direct_map = 0;
    uint64_t direct = 0;
    if (!c_.Get(&direct_map, "the IVF direct map") || !c_.Count(8, &direct, "the IVF direct map")) return false;
    if (direct_map != 0 || direct != 0) return c_.Fail("the IVF index keeps a direct map");
    uint32_t lists = 0, list_type = 0;
    uint64_t lists_nlist = 0, code_size = 0, entries = 0;
    if (!c_.Get(&lists, "the inverted lists")) return false;
    if (lists != FourCc("ilar")) return c_.Fail("the inverted lists are not array lists");
    if (!c_.Get(&lists_nlist, "the inverted lists") || !c_.Get(&code_size, "the inverted lists") ||
        !c_.Get(&list_type, "the inverted lists") || !c_.Count(8, &entries, "the inverted list sizes"))
      return false;
    if (lists_nlist != nlist || code_size != static_cast<uint64_t>(out->d) * 4)
      return c_.Fail("the inverted lists do not match the IVF index");
    const uint64_t per_vector = code_size + 8;  // codes, then an 8-byte id
    uint64_t total = 0;
    const auto add = [&](uint64_t size) {
      if (size > c_.remaining() / per_vector || total + size > c_.remaining() / per_vector)
        return c_.Fail("the inverted lists declare more vectors than the file holds");
      total += size;
      return true;
    };
    if (list_type == FourCc("full")) {
      if (entries != nlist) return c_.Fail("the inverted lists do not hold one size per list");
      for (uint64_t i = 0; i < entries; ++i) {
        uint64_t size = 0;
        if (!c_.Get(&size, "the inverted list sizes") || !add(size)) return false;
      }
    } else if (list_type == FourCc("sprs")) {
      if (entries % 2 != 0) return c_.Fail("the sparse inverted list sizes are not pairs");
      uint64_t next = 0;  // lists in increasing order
      for (uint64_t i = 0; i < entries; i += 2) {
        uint64_t list = 0, size = 0;
        if (!c_.Get(&list, "the inverted list sizes") || !c_.Get(&size, "the inverted list sizes")) return false;
        if (list < next || list >= nlist) return c_.Fail("an inverted list number is out of range");
        next = list + 1;
        if (!add(size)) return false;
      }
    } else {
      return c_.Fail("the inverted lists have an unknown layout");
    }
    if (total != static_cast<uint64_t>(out->ntotal)) return c_.Fail("the inverted lists do not hold the index's count");
    return c_.Skip(total * per_vector, "the inverted lists");
  }

  Cursor& c_;
  const IndexFileExpect& e_;
};

}  // namespace

Status CheckIndexFile(const ReadAt& read, uint64_t size, const IndexFileExpect& expect) {
  Cursor cursor(read, size);
  Walker(cursor, expect).Root();
  return cursor.error();
}

}  // namespace mlaas::vector
