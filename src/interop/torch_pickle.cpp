// A pickle protocol 2 reader for torch.save archives (torch_pickle.h). Python objects other than
// containers and tensors are refused by name; nothing is executed.
#include "pyramidclip/interop/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstring>
#include <map>
#include <vector>

#include "pyramidclip/util/errors.h"

namespace pc {

namespace {

// Globals (classes and functions the pickle names) travel on the stack as strings with this tag.
const std::string kGlobal = "\x01global:";

bool is_global(const c10::IValue& v, const std::string& name = "") {
  if (!v.isString()) return false;
  const std::string& s = v.toStringRef();
  return s.compare(0, kGlobal.size(), kGlobal) == 0 && (name.empty() || s.substr(kGlobal.size()) == name);
}

std::string global_name(const c10::IValue& v) { return v.toStringRef().substr(kGlobal.size()); }

at::ScalarType storage_dtype(const std::string& storage_class, const std::string& path) {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},     {"torch.UntypedStorage", at::kByte}};
  auto it = types.find(storage_class);
  require(it != types.end(), path + ": unsupported tensor storage " + storage_class);
  return it->second;
}

std::vector<int64_t> int_tuple(const c10::IValue& v) {
  std::vector<int64_t> out;
  for (const auto& e : v.toTupleRef().elements()) out.push_back(e.toInt());
  return out;
}

class PickleReader {
 public:
  PickleReader(caffe2::serialize::PyTorchStreamReader& zip, const std::string& path, const char* data, size_t size)
      : zip_(zip), path_(path), p_(reinterpret_cast<const uint8_t*>(data)), end_(p_ + size) {}

  c10::IValue run() {
    while (true) {
      const uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;  // PROTO
        case '.': require(stack_.size() == 1, bad("stack at STOP")); return stack_.back();
        case 'c': {  // GLOBAL module\nname\n
          const std::string module = line(), name = line();
          push(kGlobal + module + "." + name);
          break;
        }
        case '(': marks_.push_back(stack_.size()); break;
        case ')': push(c10::ivalue::Tuple::create(std::vector<c10::IValue>{})); break;
        case 't': push(c10::ivalue::Tuple::create(pop_to_mark())); break;
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          const size_t n = op - 0x84;
          require(stack_.size() >= n, bad("TUPLE"));
          std::vector<c10::IValue> items(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          push(c10::ivalue::Tuple::create(std::move(items)));
          break;
        }
        case '}': push(c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get())); break;
        case ']': push(c10::impl::GenericList(c10::AnyType::get())); break;
        case 's': {
          c10::IValue value = pop(), key = pop();
          set_items(top(), {key, value});
          break;
        }
        case 'u': { std::vector<c10::IValue> kv = pop_to_mark(); set_items(top(), kv); break; }
        case 'a': { c10::IValue v = pop(); append(top(), {v}); break; }
        case 'e': { std::vector<c10::IValue> v = pop_to_mark(); append(top(), v); break; }
        case 'X': push(text(u32())); break;                    // BINUNICODE
        case 0x8c: push(text(byte())); break;                  // SHORT_BINUNICODE
        case 'T': push(text(u32())); break;                    // BINSTRING
        case 'U': push(text(byte())); break;                   // SHORT_BINSTRING
        case 'J': push(static_cast<int64_t>(static_cast<int32_t>(u32()))); break;
        case 'K': push(static_cast<int64_t>(byte())); break;
        case 'M': { const int64_t lo = byte(); push(lo | (static_cast<int64_t>(byte()) << 8)); break; }
        case 0x8a: push(long1()); break;
        case 'G': push(float8()); break;
        case 'N': push(c10::IValue()); break;
        case 0x88: push(true); break;
        case 0x89: push(false); break;
        case 'q': memo_[byte()] = top(); break;                // BINPUT
        case 'r': memo_[u32()] = top(); break;                 // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;         // MEMOIZE
        case 'h': push(memo(byte())); break;                   // BINGET
        case 'j': push(memo(u32())); break;                    // LONG_BINGET
        case 'R': { c10::IValue args = pop(), fn = pop(); push(reduce(fn, args)); break; }
        case 'b': build(); break;
        case 0x81: {  // NEWOBJ: cls.__new__(cls, *args), a Python class instance
          c10::IValue args = pop(), cls = pop();
          throw UserError(python_object(is_global(cls) ? global_name(cls) : "an object"));
        }
        case 'Q': push(persistent(pop())); break;              // BINPERSID
        default:
          throw UserError(path_ + ": unsupported pickle opcode 0x" + hex(op) +
                          " (not written by torch.save of tensors and containers)");
      }
    }
  }

 private:
  std::string bad(const std::string& what) const { return path_ + ": damaged pickle (" + what + ")"; }
  static std::string hex(uint8_t b) {
    const char* d = "0123456789abcdef";
    return {d[b >> 4], d[b & 15]};
  }
  uint8_t byte() {
    require(p_ < end_, bad("unexpected end"));
    return *p_++;
  }
  const uint8_t* take(size_t n) {
    require(static_cast<size_t>(end_ - p_) >= n, bad("unexpected end"));
    const uint8_t* at = p_;
    p_ += n;
    return at;
  }
  uint32_t u32() {
    const uint8_t* b = take(4);
    return b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  std::string text(size_t n) {
    const uint8_t* b = take(n);
    return std::string(reinterpret_cast<const char*>(b), n);
  }
  std::string line() {
    std::string s;
    for (uint8_t c = byte(); c != '\n'; c = byte()) s += static_cast<char>(c);
    return s;
  }
  int64_t long1() {
    const size_t n = byte();
    require(n <= 8, path_ + ": integer wider than 64 bits in the pickle");
    const uint8_t* b = take(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  double float8() {  // big-endian IEEE double
    const uint8_t* b = take(8);
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  void push(c10::IValue v) { stack_.push_back(std::move(v)); }
  c10::IValue pop() {
    require(!stack_.empty(), bad("empty stack"));
    c10::IValue v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  c10::IValue& top() {
    require(!stack_.empty(), bad("empty stack"));
    return stack_.back();
  }
  std::vector<c10::IValue> pop_to_mark() {
    require(!marks_.empty() && marks_.back() <= stack_.size(), bad("MARK"));
    std::vector<c10::IValue> items(stack_.begin() + marks_.back(), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  c10::IValue memo(uint32_t i) {
    auto it = memo_.find(i);
    require(it != memo_.end(), bad("memo"));
    return it->second;
  }
  void set_items(c10::IValue& target, const std::vector<c10::IValue>& kv) {
    require(target.isGenericDict() && kv.size() % 2 == 0, bad("SETITEMS on a non-dict"));
    c10::impl::GenericDict d = target.toGenericDict();
    for (size_t i = 0; i < kv.size(); i += 2) d.insert_or_assign(kv[i], kv[i + 1]);
  }
  void append(c10::IValue& target, const std::vector<c10::IValue>& items) {
    require(target.isList(), bad("APPENDS on a non-list"));
    c10::impl::GenericList l = target.toList();
    for (const auto& v : items) l.push_back(v);
  }

  c10::IValue reduce(const c10::IValue& fn, const c10::IValue& args) {
    require(is_global(fn) && args.isTuple(), bad("REDUCE"));
    const std::string name = global_name(fn);
    const auto& a = args.toTupleRef().elements();
    if (name == "collections.OrderedDict") return c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get());
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      require(a.size() >= 4 && a[0].isTensor(), bad("_rebuild_tensor_v2 arguments"));
      return a[0].toTensor().as_strided(int_tuple(a[2]), int_tuple(a[3]), a[1].toInt());
    }
    if (name == "torch.jit._pickle.restore_type_tag") {  // LibTorch's pickle_save: (dict, "Dict[str, Tensor]")
      require(!a.empty(), bad("restore_type_tag arguments"));
      return a[0];
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      require(!a.empty() && a[0].isTensor(), bad("_rebuild_parameter arguments"));
      return a[0];
    }
    throw UserError(python_object(name));
  }
  // OrderedDict's state (the state dict's _metadata: versions per module) is not needed here.
  void build() {
    c10::IValue state = pop();
    (void)state;
    require(top().isGenericDict() || top().isTensor(), python_object(is_global(top()) ? global_name(top()) : "an object"));
  }
  std::string python_object(const std::string& name) const {
    return path_ + " holds a Python object (" + name +
           ") that only Python can load: extract the weights in Python, e.g. torch.save(torch.load(f, "
           "map_location='cpu')['state_dict'], 'weights.pt'), and import that";
  }

  // ('storage', storage class, key, location, numel) -> a 1-D tensor over the record data/<key>
  c10::IValue persistent(const c10::IValue& pid) {
    require(pid.isTuple(), bad("persistent id"));
    const std::vector<c10::IValue> t = pid.toTupleRef().elements().vec();
    require(t.size() >= 5 && t[0].isString() && t[0].toStringRef() == "storage" && is_global(t[1]) && t[2].isString(),
            bad("persistent id"));
    const std::string key = t[2].toStringRef();
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const at::ScalarType dtype = storage_dtype(global_name(t[1]), path_);
    const int64_t numel = t[4].toInt();
    at::DataPtr data;
    size_t bytes = 0;
    try {
      std::tie(data, bytes) = zip_.getRecord("data/" + key);
    } catch (const c10::Error&) {
      throw UserError(path_ + ": tensor data data/" + key + " is missing from the archive (truncated file?)");
    }
    at::Tensor storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
    require(bytes == static_cast<size_t>(numel) * storage.element_size(),
            path_ + ": tensor data data/" + key + " has " + std::to_string(bytes) + " bytes, expected " +
                std::to_string(numel * storage.element_size()));
    if (bytes) std::memcpy(storage.data_ptr(), data.get(), bytes);
    storages_.emplace(key, storage);
    return storage;
  }

  caffe2::serialize::PyTorchStreamReader& zip_;
  const std::string& path_;
  const uint8_t* p_;
  const uint8_t* end_;
  std::vector<c10::IValue> stack_;
  std::vector<size_t> marks_;
  std::map<uint32_t, c10::IValue> memo_;
  std::map<std::string, at::Tensor> storages_;
};

}  // namespace

c10::IValue load_torch_pickle(const std::string& path) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  at::DataPtr pkl;
  size_t size = 0;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
    std::tie(pkl, size) = zip->getRecord("data.pkl");
  } catch (const c10::Error& e) {
    const std::string why = e.what_without_backtrace();
    throw UserError(path + ": not a readable torch.save archive (" + why.substr(0, why.find('\n')) +
                    "): check the file, or re-save it with torch.save(state_dict, f)");
  }
  PickleReader reader(*zip, path, static_cast<const char*>(pkl.get()), size);
  return reader.run();
}

}  // namespace pc
