// GgufValue: scalar conversions, builders and the compact array form (see
// gguf.h).
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "formats/gguf.h"

namespace formiga {
namespace {

// Whether `item` can be stored in the compact form of an array of `elem`:
// same type, and an integer value within the type's width.
bool FitsCompact(GgufType elem, const GgufValue& item) {
  if (elem == GgufType::kArray || item.type != elem) return false;
  switch (elem) {
    case GgufType::kUint8: return item.u <= 0xff;
    case GgufType::kUint16: return item.u <= 0xffff;
    case GgufType::kUint32: return item.u <= 0xffffffffu;
    case GgufType::kBool: return item.u <= 1;
    case GgufType::kInt8: return item.i >= -128 && item.i <= 127;
    case GgufType::kInt16: return item.i >= -32768 && item.i <= 32767;
    case GgufType::kInt32:
      return item.i >= std::numeric_limits<int32_t>::min() && item.i <= std::numeric_limits<int32_t>::max();
    default: return true;
  }
}

template <class T>
T Load(std::string_view bytes, size_t k) {
  T v;
  std::memcpy(&v, bytes.data() + k * sizeof(T), sizeof(T));
  return v;
}

template <class T>
void Store(std::string* packed, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  packed->append(b, sizeof(T));
}

}  // namespace

size_t GgufScalarWidth(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool: return 1;
    case GgufType::kUint16:
    case GgufType::kInt16: return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32: return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64: return 8;
    case GgufType::kString:
    case GgufType::kArray: return 0;
  }
  return 0;
}

bool GgufValue::is_unsigned() const {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64:
    case GgufType::kBool: return true;
    default: return false;
  }
}

bool GgufValue::is_signed() const {
  switch (type) {
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64: return true;
    default: return false;
  }
}

bool GgufValue::is_integer() const { return is_unsigned() || is_signed(); }

bool GgufValue::is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }

Result<int64_t> GgufValue::AsInt() const {
  if (is_signed()) return i;
  if (is_unsigned()) {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Status::OutOfRange("value " + std::to_string(u) + " does not fit in int64");
    }
    return static_cast<int64_t>(u);
  }
  return Status::InvalidArgument(std::string("expected an integer, found ") + GgufTypeName(type));
}

Result<double> GgufValue::AsFloat() const {
  if (is_float()) return f;
  if (is_signed()) return static_cast<double>(i);
  if (is_unsigned()) return static_cast<double>(u);
  return Status::InvalidArgument(std::string("expected a number, found ") + GgufTypeName(type));
}

// ---- arrays ------------------------------------------------------------------

size_t GgufValue::size() const {
  if (!is_compact()) return items.size();
  if (elem_type == GgufType::kString) return ends.size();
  const size_t width = GgufScalarWidth(elem_type);
  return width == 0 ? 0 : bytes().size() / width;  // 0: an invalid elem_type (GgufWriter rejects it)
}

GgufValue GgufValue::At(size_t k) const {
  if (!is_compact()) return items[k];
  const std::string_view b = bytes();
  GgufValue x;
  x.type = elem_type;
  switch (elem_type) {
    case GgufType::kUint8:
    case GgufType::kBool: x.u = Load<uint8_t>(b, k); break;
    case GgufType::kUint16: x.u = Load<uint16_t>(b, k); break;
    case GgufType::kUint32: x.u = Load<uint32_t>(b, k); break;
    case GgufType::kUint64: x.u = Load<uint64_t>(b, k); break;
    case GgufType::kInt8: x.i = Load<int8_t>(b, k); break;
    case GgufType::kInt16: x.i = Load<int16_t>(b, k); break;
    case GgufType::kInt32: x.i = Load<int32_t>(b, k); break;
    case GgufType::kInt64: x.i = Load<int64_t>(b, k); break;
    case GgufType::kFloat32: x.f = Load<float>(b, k); break;
    case GgufType::kFloat64: x.f = Load<double>(b, k); break;
    case GgufType::kString: x.str = std::string(StringAt(k)); break;
    case GgufType::kArray: break;  // not compact
  }
  return x;
}

std::string_view GgufValue::StringAt(size_t k) const {
  if (!is_compact()) return items[k].str;
  const size_t begin = (k == 0 ? 0 : ends[k - 1]) + sizeof(uint64_t);  // after the item's length
  return bytes().substr(begin, ends[k] - begin);
}

Result<int64_t> GgufValue::IntAt(size_t k) const {
  if (is_compact()) {
    const std::string_view b = bytes();
    switch (elem_type) {
      case GgufType::kUint8:
      case GgufType::kBool: return int64_t{Load<uint8_t>(b, k)};
      case GgufType::kUint16: return int64_t{Load<uint16_t>(b, k)};
      case GgufType::kUint32: return int64_t{Load<uint32_t>(b, k)};
      case GgufType::kInt8: return int64_t{Load<int8_t>(b, k)};
      case GgufType::kInt16: return int64_t{Load<int16_t>(b, k)};
      case GgufType::kInt32: return int64_t{Load<int32_t>(b, k)};
      case GgufType::kInt64: return Load<int64_t>(b, k);
      default: break;  // uint64 (range check), floats and strings (errors)
    }
  }
  return At(k).AsInt();
}

Result<double> GgufValue::FloatAt(size_t k) const {
  if (is_compact()) {
    const std::string_view b = bytes();
    switch (elem_type) {
      case GgufType::kFloat32: return static_cast<double>(Load<float>(b, k));
      case GgufType::kFloat64: return Load<double>(b, k);
      case GgufType::kInt32: return static_cast<double>(Load<int32_t>(b, k));
      default: break;
    }
  }
  return At(k).AsFloat();
}

void GgufValue::Own() {
  if (mapped.data() != nullptr) {
    packed.assign(mapped);
    mapped = {};
  }
  for (GgufValue& item : items) item.Own();
}

void GgufValue::Append(const GgufValue& item) {
  Own();
  if (is_compact() && FitsCompact(elem_type, item)) {
    switch (elem_type) {
      case GgufType::kUint8:
      case GgufType::kBool: Store<uint8_t>(&packed, static_cast<uint8_t>(item.u)); return;
      case GgufType::kUint16: Store<uint16_t>(&packed, static_cast<uint16_t>(item.u)); return;
      case GgufType::kUint32: Store<uint32_t>(&packed, static_cast<uint32_t>(item.u)); return;
      case GgufType::kUint64: Store<uint64_t>(&packed, item.u); return;
      case GgufType::kInt8: Store<int8_t>(&packed, static_cast<int8_t>(item.i)); return;
      case GgufType::kInt16: Store<int16_t>(&packed, static_cast<int16_t>(item.i)); return;
      case GgufType::kInt32: Store<int32_t>(&packed, static_cast<int32_t>(item.i)); return;
      case GgufType::kInt64: Store<int64_t>(&packed, item.i); return;
      case GgufType::kFloat32: Store<float>(&packed, static_cast<float>(item.f)); return;
      case GgufType::kFloat64: Store<double>(&packed, item.f); return;
      case GgufType::kString: AppendString(item.str); return;
      case GgufType::kArray: break;
    }
  }
  if (is_compact()) {
    // NOTE: an item the compact form cannot hold (wrong type, out of range)
    // turns the array into the general form, which GgufWriter then rejects.
    std::vector<GgufValue> general;
    general.reserve(size() + 1);
    for (size_t k = 0; k < size(); ++k) general.push_back(At(k));
    std::string().swap(packed);
    ends.clear();
    ends.shrink_to_fit();
    items = std::move(general);
  }
  items.push_back(item);
}

void GgufValue::AppendString(std::string_view s) {
  Own();
  if (!is_compact()) {
    items.push_back(String(std::string(s)));
    return;
  }
  Store<uint64_t>(&packed, s.size());
  packed.append(s);
  // NOTE: the reader caps a string array's bytes at kGgufMaxStringArrayBytes;
  // hand-built values are trusted to stay below.
  ends.push_back(static_cast<uint32_t>(packed.size()));
}

void GgufValue::Truncate(size_t n) {
  if (n >= size()) return;
  Own();
  if (!is_compact()) {
    items.resize(n);
  } else if (elem_type == GgufType::kString) {
    ends.resize(n);
    packed.resize(n == 0 ? 0 : ends[n - 1]);
  } else {
    packed.resize(n * GgufScalarWidth(elem_type));
  }
}

// ---- builders ----------------------------------------------------------------

GgufValue GgufValue::Uint8(uint8_t v) { GgufValue x; x.type = GgufType::kUint8; x.u = v; return x; }
GgufValue GgufValue::Int8(int8_t v) { GgufValue x; x.type = GgufType::kInt8; x.i = v; return x; }
GgufValue GgufValue::Uint16(uint16_t v) { GgufValue x; x.type = GgufType::kUint16; x.u = v; return x; }
GgufValue GgufValue::Int16(int16_t v) { GgufValue x; x.type = GgufType::kInt16; x.i = v; return x; }
GgufValue GgufValue::Uint32(uint32_t v) { GgufValue x; x.type = GgufType::kUint32; x.u = v; return x; }
GgufValue GgufValue::Int32(int32_t v) { GgufValue x; x.type = GgufType::kInt32; x.i = v; return x; }
GgufValue GgufValue::Uint64(uint64_t v) { GgufValue x; x.type = GgufType::kUint64; x.u = v; return x; }
GgufValue GgufValue::Int64(int64_t v) { GgufValue x; x.type = GgufType::kInt64; x.i = v; return x; }
GgufValue GgufValue::Float32(float v) { GgufValue x; x.type = GgufType::kFloat32; x.f = v; return x; }
GgufValue GgufValue::Float64(double v) { GgufValue x; x.type = GgufType::kFloat64; x.f = v; return x; }
GgufValue GgufValue::Bool(bool v) { GgufValue x; x.type = GgufType::kBool; x.u = v ? 1 : 0; return x; }
GgufValue GgufValue::String(std::string v) {
  GgufValue x;
  x.type = GgufType::kString;
  x.str = std::move(v);
  return x;
}
GgufValue GgufValue::Array(GgufType elem, std::vector<GgufValue> items) {
  GgufValue x;
  x.type = GgufType::kArray;
  x.elem_type = elem;
  if (elem == GgufType::kArray) {
    x.items = std::move(items);
    return x;
  }
  if (elem == GgufType::kString) {
    x.ends.reserve(items.size());
  } else {
    x.packed.reserve(items.size() * GgufScalarWidth(elem));
  }
  for (const GgufValue& item : items) x.Append(item);
  return x;
}

}  // namespace formiga
