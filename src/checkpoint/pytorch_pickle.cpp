#include "checkpoint/pytorch_pickle.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <variant>

#include "common/text.h"

namespace mlaas::checkpoint {
namespace {

// ---- ZIP (torch.save's default format: stored entries, ZIP64 for large files) -------------

uint16_t U16(std::string_view b, size_t at) { return static_cast<uint16_t>(uint8_t(b[at]) | uint8_t(b[at + 1]) << 8); }
uint32_t U32(std::string_view b, size_t at) { return uint32_t(U16(b, at)) | uint32_t(U16(b, at + 2)) << 16; }
uint64_t U64(std::string_view b, size_t at) { return uint64_t(U32(b, at)) | uint64_t(U32(b, at + 4)) << 32; }

Status Bad(const std::string& what) { return InvalidArgument("not a PyTorch checkpoint this loader reads: " + what); }

// The entries of a zip archive: name -> bytes (views into `zip`). Only stored (uncompressed)
// entries, which is what torch.save writes.
Result<std::map<std::string, std::string_view>> ReadZip(std::string_view zip) {
  if (zip.size() < 22) return Bad("a zip shorter than its end record");
  size_t eocd = std::string_view::npos;
  for (size_t i = zip.size() - 22 + 1; i-- > 0 && zip.size() - i <= 22 + 65535;) {
    if (U32(zip, i) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string_view::npos) return Bad("no zip end-of-central-directory record");
  uint64_t entries = U16(zip, eocd + 10);
  uint64_t cd_size = U32(zip, eocd + 12);
  uint64_t cd_offset = U32(zip, eocd + 16);
  if ((entries == 0xFFFF || cd_offset == 0xFFFFFFFF || cd_size == 0xFFFFFFFF) && eocd >= 20 &&
      U32(zip, eocd - 20) == 0x07064b50) {  // ZIP64 locator
    const uint64_t z64 = U64(zip, eocd - 20 + 8);
    if (zip.size() < 56 || z64 > zip.size() - 56 || U32(zip, z64) != 0x06064b50) return Bad("a broken ZIP64 end record");
    entries = U64(zip, z64 + 32);
    cd_size = U64(zip, z64 + 40);
    cd_offset = U64(zip, z64 + 48);
  }
  if (cd_offset > zip.size() || cd_size > zip.size() - cd_offset) return Bad("a central directory outside the file");
  if (entries > 1'000'000) return Bad("too many zip entries");
  std::map<std::string, std::string_view> out;
  size_t at = cd_offset;
  for (uint64_t e = 0; e < entries; ++e) {
    if (at > zip.size() || zip.size() - at < 46 || U32(zip, at) != 0x02014b50) return Bad("a broken central directory");
    const uint16_t method = U16(zip, at + 10);
    uint64_t csize = U32(zip, at + 20), usize = U32(zip, at + 24);
    const size_t name_len = U16(zip, at + 28), extra_len = U16(zip, at + 30), comment_len = U16(zip, at + 32);
    uint64_t local = U32(zip, at + 42);
    if (zip.size() - at - 46 < name_len + extra_len + comment_len) return Bad("a central directory entry past the end");
    std::string name(zip.substr(at + 46, name_len));
    // ZIP64 extended information: the 0xFFFFFFFF fields, in order.
    std::string_view extra = zip.substr(at + 46 + name_len, extra_len);
    for (size_t x = 0; x + 4 <= extra.size();) {
      const uint16_t id = U16(extra, x), len = U16(extra, x + 2);
      if (x + 4 + len > extra.size()) break;
      if (id == 0x0001) {
        size_t f = x + 4;
        auto take = [&](uint64_t& v) {
          if (v == 0xFFFFFFFF && f + 8 <= x + 4 + len) {
            v = U64(extra, f);
            f += 8;
          }
        };
        take(usize);
        take(csize);
        take(local);
      }
      x += 4 + len;
    }
    at += 46 + name_len + extra_len + comment_len;
    if (method != 0) return Bad("zip entry '" + name + "' is compressed (torch.save stores entries uncompressed)");
    if (csize != usize) return Bad("zip entry '" + name + "' has different stored and real sizes");
    if (local > zip.size() || zip.size() - local < 30 || U32(zip, local) != 0x04034b50)
      return Bad("zip entry '" + name + "' has no local header");
    const size_t data = local + 30 + U16(zip, local + 26) + U16(zip, local + 28);
    if (data > zip.size() || zip.size() - data < csize) return Bad("zip entry '" + name + "' runs past the end of the file");
    out[name] = zip.substr(data, csize);
  }
  return out;
}

// ---- The restricted unpickler ---------------------------------------------------------------

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct StorageRef {
  DType dtype = DType::kF32;
  std::string key;
  uint64_t numel = 0;
};

struct TensorValue {
  std::shared_ptr<StorageRef> storage;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

struct Global {
  std::string module, name;
};

struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kBytes, kTuple, kList, kDict, kGlobal, kStorage, kTensor, kMark };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                   // string, bytes
  std::vector<ValuePtr> items;                     // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;  // dict (in insertion order)
  Global global;
  std::shared_ptr<StorageRef> storage;
  TensorValue tensor;
};

ValuePtr Make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

std::optional<DType> StorageDType(const std::string& name) {
  static const std::map<std::string, DType, std::less<>> kTypes = {
      {"FloatStorage", DType::kF32}, {"DoubleStorage", DType::kF64}, {"HalfStorage", DType::kF16},
      {"BFloat16Storage", DType::kBF16}, {"LongStorage", DType::kI64}, {"IntStorage", DType::kI32},
      {"ShortStorage", DType::kI16}, {"CharStorage", DType::kI8}, {"ByteStorage", DType::kU8},
      {"BoolStorage", DType::kBool}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) return std::nullopt;
  return it->second;
}

// The globals a state dict needs; anything else is refused.
bool Allowed(const Global& g) {
  static const std::set<std::pair<std::string, std::string>> kAllowed = {
      {"collections", "OrderedDict"},
      {"torch._utils", "_rebuild_tensor_v2"},
      {"torch._utils", "_rebuild_tensor"},
      {"torch._utils", "_rebuild_parameter"},
      {"torch._utils", "_rebuild_parameter_with_state"},
      {"torch._tensor", "_rebuild_from_type_v2"},
      {"torch.nn.parameter", "Parameter"},
      {"torch", "Tensor"},
      {"_codecs", "encode"},
  };
  if (g.module == "torch" && StorageDType(g.name)) return true;
  return kAllowed.count({g.module, g.name}) > 0;
}

class Unpickler {
 public:
  Unpickler(std::string_view bytes, const std::map<std::string, std::shared_ptr<StorageRef>>* storages,
            const PickleLimits& limits, bool legacy)
      : b_(bytes), limits_(limits), legacy_(legacy) {
    (void)storages;
  }
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;
  // A pickle may put a list inside itself: the values' links are cut here, so that no cycle of
  // shared pointers outlives the unpickler (the state dict must be collected before). The
  // unpickler holds every value it made (created_) until then, so that none is freed while it
  // runs (a POP of a list nested 200,000 deep would free it by a recursion as deep), and here
  // cuts the links before letting go: each value is then freed alone.
  ~Unpickler() {
    for (auto& v : created_) {
      v->items.clear();
      v->dict.clear();
    }
  }

  // Runs to STOP; the value, and how many bytes were read.
  Result<ValuePtr> Load() {
    for (;;) {
      if (pos_ >= b_.size()) return Bad("the pickle ends before its STOP");
      if (++ops_ > limits_.max_objects) return Bad("a pickle larger than the loader allows");
      const uint8_t op = static_cast<uint8_t>(b_[pos_++]);
      switch (op) {
        case 0x80: MLAAS_RETURN_IF_ERROR(Need(1)); ++pos_; break;  // PROTO
        case 0x95: MLAAS_RETURN_IF_ERROR(Need(8)); pos_ += 8; break;  // FRAME
        case '.': {  // STOP
          if (stack_.empty()) return Bad("STOP on an empty stack");
          return stack_.back();
        }
        case '(': stack_.push_back(New(Value::Kind::kMark)); break;
        case '}': stack_.push_back(New(Value::Kind::kDict)); break;
        case ']': stack_.push_back(New(Value::Kind::kList)); break;
        case ')': stack_.push_back(New(Value::Kind::kTuple)); break;
        case 'N': stack_.push_back(New(Value::Kind::kNone)); break;
        case 0x88: case 0x89: {
          auto v = New(Value::Kind::kBool);
          v->b = op == 0x88;
          stack_.push_back(v);
          break;
        }
        case 'J': MLAAS_RETURN_IF_ERROR(Need(4)); PushInt(static_cast<int32_t>(U32(b_, pos_))); pos_ += 4; break;
        case 'K': MLAAS_RETURN_IF_ERROR(Need(1)); PushInt(uint8_t(b_[pos_])); pos_ += 1; break;
        case 'M': MLAAS_RETURN_IF_ERROR(Need(2)); PushInt(U16(b_, pos_)); pos_ += 2; break;
        case 0x8a: {  // LONG1
          MLAAS_RETURN_IF_ERROR(Need(1));
          const size_t n = uint8_t(b_[pos_++]);
          MLAAS_RETURN_IF_ERROR(Need(n));
          if (n > 16) return Bad("an integer wider than 128 bits");
          uint64_t v = 0;  // the low 64 bits (the legacy format's 80-bit magic number is checked by its bytes)
          for (size_t k = 0; k < std::min<size_t>(n, 8); ++k) v |= uint64_t(uint8_t(b_[pos_ + k])) << (8 * k);
          if (n > 0 && n < 8 && (uint8_t(b_[pos_ + n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
          pos_ += n;
          PushInt(static_cast<int64_t>(v));
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          MLAAS_RETURN_IF_ERROR(Need(8));
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = bits << 8 | uint8_t(b_[pos_ + k]);
          pos_ += 8;
          auto v = New(Value::Kind::kFloat);
          std::memcpy(&v->f, &bits, 8);
          stack_.push_back(v);
          break;
        }
        case 'X': case 0x8c: case 0x8d: case 'T': case 'U': case 'B': case 'C': case 0x8e: {
          const size_t width = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
          MLAAS_RETURN_IF_ERROR(Need(width));
          uint64_t n = width == 1 ? uint8_t(b_[pos_]) : width == 4 ? U32(b_, pos_) : U64(b_, pos_);
          pos_ += width;
          MLAAS_RETURN_IF_ERROR(Need(n));
          auto v = Make(op == 'B' || op == 'C' || op == 0x8e ? Value::Kind::kBytes : Value::Kind::kString);
          v->s = std::string(b_.substr(pos_, n));
          pos_ += n;
          stack_.push_back(v);
          break;
        }
        case 't': {  // TUPLE
          MLAAS_ASSIGN_OR_RETURN(auto items, PopToMark());
          auto v = New(Value::Kind::kTuple);
          v->items = std::move(items);
          stack_.push_back(v);
          break;
        }
        case 0x85: case 0x86: case 0x87: {
          const size_t n = op - 0x84;
          if (stack_.size() < n) return Bad("a tuple of more items than the stack holds");
          auto v = New(Value::Kind::kTuple);
          v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          MLAAS_RETURN_IF_ERROR(NoMarks(v->items));
          stack_.push_back(v);
          break;
        }
        case 'a': {  // APPEND
          if (stack_.size() < 2) return Bad("APPEND on a short stack");
          auto item = Pop();
          MLAAS_RETURN_IF_ERROR(NoMarks({item}));
          if (stack_.back()->kind != Value::Kind::kList) return Bad("APPEND to something that is not a list");
          stack_.back()->items.push_back(item);
          break;
        }
        case 'e': {  // APPENDS
          MLAAS_ASSIGN_OR_RETURN(auto items, PopToMark());
          if (stack_.empty() || stack_.back()->kind != Value::Kind::kList) return Bad("APPENDS to something that is not a list");
          for (auto& x : items) stack_.back()->items.push_back(x);
          break;
        }
        case 's': {  // SETITEM
          if (stack_.size() < 3) return Bad("SETITEM on a short stack");
          auto value = Pop();
          auto key = Pop();
          MLAAS_RETURN_IF_ERROR(NoMarks({key, value}));
          if (stack_.back()->kind != Value::Kind::kDict) return Bad("SETITEM on something that is not a dict");
          stack_.back()->dict.emplace_back(key, value);
          break;
        }
        case 'u': {  // SETITEMS
          MLAAS_ASSIGN_OR_RETURN(auto items, PopToMark());
          if (items.size() % 2 != 0) return Bad("SETITEMS with an odd number of items");
          if (stack_.empty() || stack_.back()->kind != Value::Kind::kDict) return Bad("SETITEMS on something that is not a dict");
          for (size_t k = 0; k < items.size(); k += 2) stack_.back()->dict.emplace_back(items[k], items[k + 1]);
          break;
        }
        case 'q': MLAAS_RETURN_IF_ERROR(Need(1)); MLAAS_RETURN_IF_ERROR(Put(uint8_t(b_[pos_]))); pos_ += 1; break;
        case 'r': MLAAS_RETURN_IF_ERROR(Need(4)); MLAAS_RETURN_IF_ERROR(Put(U32(b_, pos_))); pos_ += 4; break;
        case 0x94: MLAAS_RETURN_IF_ERROR(Put(memo_.size())); break;  // MEMOIZE
        case 'h': MLAAS_RETURN_IF_ERROR(Need(1)); MLAAS_RETURN_IF_ERROR(Get(uint8_t(b_[pos_]))); pos_ += 1; break;
        case 'j': MLAAS_RETURN_IF_ERROR(Need(4)); MLAAS_RETURN_IF_ERROR(Get(U32(b_, pos_))); pos_ += 4; break;
        case '0': if (stack_.empty()) return Bad("POP on an empty stack"); stack_.pop_back(); break;
        case '1': MLAAS_RETURN_IF_ERROR(PopToMark().status()); break;
        case '2': if (stack_.empty()) return Bad("DUP on an empty stack"); stack_.push_back(stack_.back()); break;
        case 'c': {  // GLOBAL module\nname\n
          const size_t nl1 = b_.find('\n', pos_);
          const size_t nl2 = nl1 == std::string_view::npos ? nl1 : b_.find('\n', nl1 + 1);
          if (nl2 == std::string_view::npos || nl2 - pos_ > 512) return Bad("a broken GLOBAL");
          MLAAS_RETURN_IF_ERROR(PushGlobal({std::string(b_.substr(pos_, nl1 - pos_)), std::string(b_.substr(nl1 + 1, nl2 - nl1 - 1))}));
          pos_ = nl2 + 1;
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          if (stack_.size() < 2) return Bad("STACK_GLOBAL on a short stack");
          auto name = Pop();
          auto module = Pop();
          if (module->kind != Value::Kind::kString || name->kind != Value::Kind::kString) return Bad("STACK_GLOBAL of non-strings");
          MLAAS_RETURN_IF_ERROR(PushGlobal({module->s, name->s}));
          break;
        }
        case 'Q': {  // BINPERSID
          if (stack_.empty()) return Bad("BINPERSID on an empty stack");
          auto pid = Pop();
          MLAAS_ASSIGN_OR_RETURN(auto v, Persistent(pid));
          stack_.push_back(v);
          break;
        }
        case 'R': {  // REDUCE
          if (stack_.size() < 2) return Bad("REDUCE on a short stack");
          auto args = Pop();
          auto fn = Pop();
          MLAAS_ASSIGN_OR_RETURN(auto v, Call(fn, args));
          stack_.push_back(v);
          break;
        }
        case 0x81: {  // NEWOBJ cls args
          if (stack_.size() < 2) return Bad("NEWOBJ on a short stack");
          auto args = Pop();
          auto cls = Pop();
          MLAAS_ASSIGN_OR_RETURN(auto v, Call(cls, args));
          stack_.push_back(v);
          break;
        }
        case 'b': {  // BUILD: state onto an object. Only the empty state of a tensor or dict is accepted.
          if (stack_.size() < 2) return Bad("BUILD on a short stack");
          auto state = Pop();
          const auto& target = stack_.back();
          if (target->kind == Value::Kind::kDict && state->kind == Value::Kind::kDict) {
            // A copy: the state may be the target itself (a memo reference), whose entries the
            // appends would move. Counted, so that dicts built into themselves stay bounded.
            const auto entries = state->dict;
            ops_ += entries.size();
            if (ops_ > limits_.max_objects) return Bad("a pickle larger than the loader allows");
            for (const auto& kv : entries) target->dict.push_back(kv);
          } else if (!(state->kind == Value::Kind::kNone || (state->kind == Value::Kind::kDict && state->dict.empty()) ||
                       target->kind == Value::Kind::kTensor)) {
            return Bad("BUILD of an object a state dict does not hold");
          }
          break;
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "0x%02x", op);
          return Bad(std::string("pickle opcode ") + hex + " is not one a state dict uses");
        }
      }
    }
  }

  size_t position() const { return pos_; }
  // Persistent ids met, in order (the legacy format's storages are read after the pickle).
  std::map<std::string, std::shared_ptr<StorageRef>> storages;

 private:
  ValuePtr New(Value::Kind k) {
    auto v = Make(k);
    created_.push_back(v);
    return v;
  }
  Status Need(uint64_t n) const {
    if (n > b_.size() - pos_) return Bad("the pickle ends in the middle of a value");
    return Status::Ok();
  }
  void PushInt(int64_t x) {
    auto v = New(Value::Kind::kInt);
    v->i = x;
    stack_.push_back(v);
  }
  ValuePtr Pop() {
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  static Status NoMarks(const std::vector<ValuePtr>& items) {
    for (const auto& x : items) {
      if (x->kind == Value::Kind::kMark) return Bad("a MARK where a value belongs");
    }
    return Status::Ok();
  }
  Result<std::vector<ValuePtr>> PopToMark() {
    for (size_t k = stack_.size(); k-- > 0;) {
      if (stack_[k]->kind == Value::Kind::kMark) {
        std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(k) + 1, stack_.end());
        stack_.resize(k);
        return items;
      }
    }
    return Bad("no MARK on the stack");
  }
  Status Put(uint64_t index) {
    if (stack_.empty()) return Bad("PUT on an empty stack");
    if (index > 10'000'000) return Bad("a memo index larger than the loader allows");
    if (memo_.size() <= index) memo_.resize(index + 1);
    memo_[index] = stack_.back();
    return Status::Ok();
  }
  Status Get(uint64_t index) {
    if (index >= memo_.size() || !memo_[index]) return Bad("GET of a memo entry never put");
    stack_.push_back(memo_[index]);
    return Status::Ok();
  }
  Status PushGlobal(Global g) {
    if (!Allowed(g))
      return InvalidArgument("global '" + g.module + "." + g.name + "' is not allowed in a checkpoint: only a state dict's "
                             "tensors are loaded, never code");
    auto v = New(Value::Kind::kGlobal);
    v->global = std::move(g);
    stack_.push_back(v);
    return Status::Ok();
  }

  // ('storage', <Storage type>, key, location, numel[, view metadata])
  Result<ValuePtr> Persistent(const ValuePtr& pid) {
    if (pid->kind != Value::Kind::kTuple || pid->items.size() < 5 || pid->items[0]->kind != Value::Kind::kString ||
        pid->items[0]->s != "storage" || pid->items[1]->kind != Value::Kind::kGlobal)
      return Bad("a persistent id that is not a storage");
    auto dtype = StorageDType(pid->items[1]->global.name);
    if (!dtype) return Bad("a storage of type " + pid->items[1]->global.name);
    const auto& key = pid->items[2];
    const auto& numel = pid->items[4];
    if ((key->kind != Value::Kind::kString && key->kind != Value::Kind::kInt) || numel->kind != Value::Kind::kInt || numel->i < 0)
      return Bad("a storage with a malformed key or size");
    const std::string k = key->kind == Value::Kind::kString ? key->s : std::to_string(key->i);
    auto& ref = storages[k];
    if (!ref) {
      ref = std::make_shared<StorageRef>();
      ref->dtype = *dtype;
      ref->key = k;
      ref->numel = static_cast<uint64_t>(numel->i);
    } else if (ref->dtype != *dtype) {
      return Bad("storage " + k + " is used with two dtypes");
    }
    auto v = New(Value::Kind::kStorage);
    v->storage = ref;
    return v;
  }

  static Result<std::vector<int64_t>> Ints(const ValuePtr& v, const std::string& what) {
    if (v->kind != Value::Kind::kTuple && v->kind != Value::Kind::kList) return Bad(what + " is not a tuple");
    if (v->items.size() > 64) return Bad(what + " has more than 64 dimensions");
    std::vector<int64_t> out;
    for (const auto& x : v->items) {
      if (x->kind != Value::Kind::kInt || x->i < 0) return Bad(what + " holds something that is not a size");
      out.push_back(x->i);
    }
    return out;
  }

  Result<ValuePtr> Call(const ValuePtr& fn, const ValuePtr& args) {
    if (fn->kind != Value::Kind::kGlobal) return Bad("a call of something that is not an allowed function");
    if (args->kind != Value::Kind::kTuple) return Bad("a call whose arguments are not a tuple");
    const Global& g = fn->global;
    const auto& a = args->items;
    if (g.name == "OrderedDict") return New(Value::Kind::kDict);
    if (g.name == "_rebuild_tensor_v2" || g.name == "_rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != Value::Kind::kStorage || a[1]->kind != Value::Kind::kInt || a[1]->i < 0)
        return Bad("a tensor rebuilt from something that is not a storage");
      auto v = New(Value::Kind::kTensor);
      v->tensor.storage = a[0]->storage;
      v->tensor.offset = a[1]->i;
      MLAAS_ASSIGN_OR_RETURN(v->tensor.size, Ints(a[2], "a tensor's size"));
      MLAAS_ASSIGN_OR_RETURN(v->tensor.stride, Ints(a[3], "a tensor's stride"));
      if (v->tensor.size.size() != v->tensor.stride.size()) return Bad("a tensor whose size and stride differ in length");
      return v;
    }
    if (g.name == "_rebuild_parameter" || g.name == "_rebuild_parameter_with_state" || g.name == "Parameter") {
      if (a.empty() || a[0]->kind != Value::Kind::kTensor) return Bad("a parameter that is not a tensor");
      return a[0];
    }
    if (g.name == "_rebuild_from_type_v2") {  // (func, new_type, args, state)
      if (a.size() < 3) return Bad("a broken _rebuild_from_type_v2");
      return Call(a[0], a[2]);
    }
    if (g.module == "_codecs" && g.name == "encode") {  // bytes written by protocol 2: encode(str, 'latin1')
      if (a.empty() || a[0]->kind != Value::Kind::kString) return Bad("a broken bytes value");
      auto v = New(Value::Kind::kBytes);
      for (size_t k = 0; k < a[0]->s.size();) {  // UTF-8 code points < 256 back to bytes
        const auto c = static_cast<unsigned char>(a[0]->s[k]);
        if (c < 0x80) {
          v->s += static_cast<char>(c);
          k += 1;
        } else if ((c & 0xE0) == 0xC0 && k + 1 < a[0]->s.size()) {
          v->s += static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(a[0]->s[k + 1]) & 0x3F));
          k += 2;
        } else {
          return Bad("a bytes value that is not latin-1");
        }
      }
      return v;
    }
    return Bad("a call of " + g.module + "." + g.name + " where a state dict has none");
  }

  std::string_view b_;
  PickleLimits limits_;
  [[maybe_unused]] bool legacy_;
  size_t pos_ = 0;
  uint64_t ops_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<ValuePtr> memo_;
  std::vector<ValuePtr> created_;  // every value made, held to the end (bounded by max_objects)
};

// The tensors of the state dict `root`, their bytes taken from `storage_bytes(key)`.
Result<std::vector<LoadedTensor>> Collect(const ValuePtr& root,
                                          const std::map<std::string, std::string_view>& storage_bytes,
                                          const PickleLimits& limits) {
  const Value* dict = root.get();
  // A checkpoint saved as {"state_dict": {...}} or {"model": {...}} holds the dict one level down.
  if (dict->kind == Value::Kind::kDict) {
    for (const auto& [k, v] : dict->dict) {
      if (k->kind == Value::Kind::kString && (k->s == "state_dict" || k->s == "model") && v->kind == Value::Kind::kDict) {
        dict = v.get();
        break;
      }
    }
  }
  if (dict->kind != Value::Kind::kDict) return Bad("the checkpoint is not a state dict (a mapping of names to tensors)");
  std::vector<LoadedTensor> out;
  uint64_t total = 0;
  std::set<std::string> seen;
  // Views may share and overlap their storages (tied weights, slices), but a few hundred bytes
  // stored must not expand to gigabytes (a stride of 0 repeats one element): the tensors may
  // hold at most 8 times the bytes stored, plus 1 MiB.
  uint64_t stored = 0;
  for (const auto& [key, data] : storage_bytes) stored += data.size();
  const uint64_t expansion_limit = 8 * stored + (uint64_t{1} << 20);
  for (const auto& [k, v] : dict->dict) {
    if (k->kind != Value::Kind::kString || !IsValidUtf8(k->s) || k->s.empty() || k->s.size() > 1024)
      return Bad("a state dict key that is not a name (a UTF-8 string of 1 to 1024 bytes)");
    if (v->kind != Value::Kind::kTensor) continue;  // non-tensor entries (e.g. _metadata) are not weights
    if (!seen.insert(k->s).second) return Bad("tensor '" + k->s + "' appears twice");
    const TensorValue& t = v->tensor;
    const size_t esize = DTypeSize(t.storage->dtype);
    auto bytes = storage_bytes.find(t.storage->key);
    if (bytes == storage_bytes.end()) return Bad("tensor '" + k->s + "': its storage " + t.storage->key + " is missing");
    if (bytes->second.size() / esize < t.storage->numel)
      return Bad("tensor '" + k->s + "': storage " + t.storage->key + " is shorter than its " + std::to_string(t.storage->numel) +
                 " elements");
    // Elements, and the furthest element the strides reach, without overflow.
    uint64_t numel = 1;
    uint64_t last = static_cast<uint64_t>(t.offset);
    for (size_t d = 0; d < t.size.size(); ++d) {
      const auto n = static_cast<uint64_t>(t.size[d]);
      if (n == 0) {
        numel = 0;
        break;
      }
      if (numel > (uint64_t{1} << 40) / n) return Bad("tensor '" + k->s + "' is too large");
      numel *= n;
      const auto stride = static_cast<uint64_t>(t.stride[d]);
      if (stride > (uint64_t{1} << 40) || (n - 1) > (uint64_t{1} << 40) / std::max<uint64_t>(stride, 1))
        return Bad("tensor '" + k->s + "' has a stride out of range");
      last += (n - 1) * stride;
    }
    if (numel > 0 && last >= t.storage->numel)
      return Bad("tensor '" + k->s + "' reaches past the end of its storage");
    total += numel * esize;
    if (total > limits.max_tensor_bytes) return ResourceExhausted("the checkpoint's tensors exceed the loader's limit");
    if (total > expansion_limit)
      return Bad("tensor '" + k->s + "': the tensors would hold " + FormatBytes(total) + " from " + FormatBytes(stored) +
                 " stored (strides that repeat elements); at most 8 times the bytes stored");
    LoadedTensor lt;
    lt.name = k->s;
    lt.dtype = t.storage->dtype;
    lt.shape = t.size;
    lt.data.resize(numel * esize);
    const char* src = bytes->second.data();
    // Row-major walk over the index space, copying element by element (contiguous runs at once).
    bool contiguous = true;
    int64_t expect = 1;
    for (size_t d = t.size.size(); d-- > 0;) {
      if (t.size[d] != 1 && t.stride[d] != expect) contiguous = false;
      expect *= t.size[d];
    }
    if (numel > 0 && contiguous) {
      std::memcpy(lt.data.data(), src + static_cast<uint64_t>(t.offset) * esize, numel * esize);
    } else if (numel > 0) {
      std::vector<int64_t> idx(t.size.size(), 0);
      for (uint64_t e = 0; e < numel; ++e) {
        uint64_t at = static_cast<uint64_t>(t.offset);
        for (size_t d = 0; d < idx.size(); ++d) at += static_cast<uint64_t>(idx[d]) * static_cast<uint64_t>(t.stride[d]);
        std::memcpy(lt.data.data() + e * esize, src + at * esize, esize);
        for (size_t d = idx.size(); d-- > 0;) {
          if (++idx[d] < t.size[d]) break;
          idx[d] = 0;
        }
      }
    }
    out.push_back(std::move(lt));
  }
  if (out.empty()) return Bad("the state dict holds no tensor");
  return out;
}

constexpr char kLegacyMagic[] = {'\x80', '\x02', '\x8a', '\x0a', '\x6c', '\xfc', '\x9c', '\x46', '\xf9', '\x20', '\x6a', '\xa8', '\x50', '\x19'};

}  // namespace

Result<std::vector<LoadedTensor>> ParsePytorchStateDict(std::string_view bytes, const PickleLimits& limits) {
  if (bytes.size() >= 4 && U32(bytes, 0) == 0x04034b50) {  // the zip format
    MLAAS_ASSIGN_OR_RETURN(auto entries, ReadZip(bytes));
    std::string prefix;
    for (const auto& [name, data] : entries) {
      if (name.size() >= 8 && name.compare(name.size() - 8, 8, "data.pkl") == 0 && (name.size() == 8 || name[name.size() - 9] == '/')) {
        prefix = name.substr(0, name.size() - 8);
        break;
      }
    }
    auto pkl = entries.find(prefix + "data.pkl");
    if (pkl == entries.end()) return Bad("a zip without data.pkl");
    if (auto order = entries.find(prefix + "byteorder"); order != entries.end() && order->second != "little")
      return Bad("a big-endian checkpoint");
    Unpickler u(pkl->second, nullptr, limits, false);
    MLAAS_ASSIGN_OR_RETURN(ValuePtr root, u.Load());
    std::map<std::string, std::string_view> storage_bytes;
    for (const auto& [key, ref] : u.storages) {
      auto data = entries.find(prefix + "data/" + key);
      if (data == entries.end()) return Bad("storage " + key + " is missing from the zip");
      storage_bytes[key] = data->second;
    }
    return Collect(root, storage_bytes, limits);
  }
  if (bytes.size() >= sizeof(kLegacyMagic) && std::memcmp(bytes.data(), kLegacyMagic, sizeof(kLegacyMagic)) == 0) {
    // The legacy format: pickles of the magic number, the protocol version, system info and the
    // object, then a pickle of the storage keys, then each storage: an int64 count and its bytes.
    size_t at = 0;
    ValuePtr root;
    std::map<std::string, std::shared_ptr<StorageRef>> storages;
    std::vector<std::unique_ptr<Unpickler>> parts;  // alive until the state dict is collected
    for (int part = 0; part < 5; ++part) {
      parts.push_back(std::make_unique<Unpickler>(bytes.substr(at), nullptr, limits, true));
      Unpickler& u = *parts.back();
      MLAAS_ASSIGN_OR_RETURN(ValuePtr v, u.Load());
      at += u.position();
      if (part == 1 && (v->kind != Value::Kind::kInt || v->i != 1001)) return Bad("a legacy checkpoint of an unknown protocol");
      if (part == 3) {
        root = v;
        storages = u.storages;
      }
      if (part == 4) {
        if (v->kind != Value::Kind::kList) return Bad("a legacy checkpoint without its storage list");
        std::map<std::string, std::string_view> storage_bytes;
        for (const auto& key : v->items) {
          if (key->kind != Value::Kind::kString) return Bad("a storage key that is not a string");
          auto ref = storages.find(key->s);
          if (ref == storages.end()) return Bad("storage " + key->s + " is not used by the state dict");
          if (bytes.size() - at < 8) return Bad("storage " + key->s + " is cut short");
          const uint64_t count = U64(bytes, at);
          at += 8;
          const size_t esize = DTypeSize(ref->second->dtype);
          if (count != ref->second->numel || count > (bytes.size() - at) / esize)
            return Bad("storage " + key->s + " does not hold its " + std::to_string(ref->second->numel) + " elements");
          storage_bytes[key->s] = bytes.substr(at, count * esize);
          at += count * esize;
        }
        return Collect(root, storage_bytes, limits);
      }
    }
  }
  if (!bytes.empty() && static_cast<uint8_t>(bytes[0]) == 0x80) {
    // A bare pickle: run it (restricted) only to say what is wrong with it.
    Unpickler u(bytes, nullptr, limits, false);
    MLAAS_RETURN_IF_ERROR(u.Load().status());
    return Bad("a bare pickle, not torch.save's zip or legacy format");
  }
  return Bad("the file is neither torch.save's zip format nor its legacy format");
}

Result<std::vector<LoadedTensor>> ReadPytorchStateDict(const std::filesystem::path& file, const PickleLimits& limits) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return InvalidArgument("cannot read " + file.filename().string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto r = ParsePytorchStateDict(bytes, limits);
  if (!r.has_value()) return r.error().WithContext(file.filename().string());
  return r;
}

Result<std::string> ToSafetensors(std::vector<LoadedTensor> tensors) {
  std::vector<TensorToWrite> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) {
    out.push_back({t.name, t.dtype, t.shape, std::as_bytes(std::span(t.data.data(), t.data.size()))});
  }
  return SerializeSafetensors(std::move(out));
}

}  // namespace mlaas::checkpoint
