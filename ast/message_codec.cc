// Serializing an AST to bytes and back (ast/message_codec.h).
#include "ast/message_codec.h"

#include <cstring>
#include <string>
#include <unordered_map>

namespace shoal::ast {

namespace {

void put64(std::vector<uint8_t>& out, uint64_t w) {
  const size_t at = out.size();
  out.resize(at + 8);
  std::memcpy(out.data() + at, &w, 8);
}

// Reference words in a message: 0 null, odd a small integer as is, (i + 1) << 2 string i,
// (k << 2) | 2 object k.
constexpr uint64_t kObjectBit = 2;

struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  uint64_t u64() {
    if (end - p < 8) throw InvalidArgument("deserialize_tree: truncated message");
    uint64_t w;
    std::memcpy(&w, p, 8);
    p += 8;
    return w;
  }
  const uint8_t* take(uint64_t n) {
    if (static_cast<uint64_t>(end - p) < n) throw InvalidArgument("deserialize_tree: truncated message");
    const uint8_t* at = p;
    p += (n + 7) & ~uint64_t{7};
    if (p > end) p = end;
    return at;
  }
};

}  // namespace

void serialize_tree(Value root, std::vector<uint8_t>& out) {
  out.clear();
  thread_local std::vector<Object*> order;  // pre-order
  thread_local std::vector<Value> stack;
  thread_local std::unordered_map<Object*, uint64_t> string_index;
  thread_local std::vector<Object*> strings;
  std::unordered_map<Object*, uint64_t> object_index;  // object -> pre-order position
  order.clear();
  stack.clear();
  string_index.clear();
  strings.clear();
  auto note = [&](Value v) {
    if (!v.is_object()) return;
    Object* o = v.as_object();
    if (o->class_id() == kStringClassId) {
      if (string_index.emplace(o, strings.size()).second) strings.push_back(o);
      return;
    }
    if (!object_index.emplace(o, object_index.size()).second)  // seen: a DAG or a cycle
      throw InvalidArgument("serialize_tree: an object reached twice (trees only)");
    stack.push_back(v);
  };
  note(root);
  while (!stack.empty()) {
    Object* o = stack.back().as_object();
    stack.pop_back();
    order.push_back(o);
    const ClassInfo& c = class_info(o->class_id());
    if (c.layout == Layout::kFixed) {
      const char* payload = static_cast<const char*>(o->payload());
      for (uint32_t off : c.ref_offsets) note(reinterpret_cast<const Slot*>(payload + off)->load());
    } else if (c.layout == Layout::kRefArray) {
      const auto* a = static_cast<const RefArray*>(o->payload());
      for (size_t i = 0; i < a->length(); ++i) note(a->slots()[i].load());
    } else if (c.layout != Layout::kByteArray) {
      throw InvalidArgument("serialize_tree: cannot serialize an object of class " + c.name);
    }
  }
  // Object k of the message is order[order.size() - 1 - k]: children before parents.
  for (size_t k = 0; k < order.size(); ++k) object_index[order[order.size() - 1 - k]] = k;
  auto encode = [&](Value v) -> uint64_t {
    if (!v.is_object()) return v.raw();
    Object* o = v.as_object();
    if (o->class_id() == kStringClassId) return (string_index.at(o) + 1) << 2;
    return (object_index.at(o) << 2) | kObjectBit;
  };
  put64(out, strings.size());
  for (Object* s : strings) {
    const std::string_view t = static_cast<const String*>(s->payload())->view();
    put64(out, t.size());
    const size_t at = out.size();
    out.resize(at + ((t.size() + 7) & ~size_t{7}), 0);
    std::memcpy(out.data() + at, t.data(), t.size());
  }
  put64(out, order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    Object* o = order[order.size() - 1 - k];
    const ClassInfo& c = class_info(o->class_id());
    put64(out, o->class_id());
    if (c.layout == Layout::kFixed) {
      const char* payload = static_cast<const char*>(o->payload());
      size_t r = 0;
      for (uint32_t off = 0; off < c.instance_size; off += 8) {
        uint64_t w;
        std::memcpy(&w, payload + off, 8);
        if (r < c.ref_offsets.size() && c.ref_offsets[r] == off) {
          ++r;
          w = encode(reinterpret_cast<const Slot*>(payload + off)->load());
        }
        put64(out, w);
      }
    } else if (c.layout == Layout::kRefArray) {
      const auto* a = static_cast<const RefArray*>(o->payload());
      put64(out, a->length());
      for (size_t i = 0; i < a->length(); ++i) put64(out, encode(a->slots()[i].load()));
    } else {
      const auto* b = static_cast<const ByteArray*>(o->payload());
      put64(out, b->length());
      const size_t at = out.size();
      out.resize(at + ((b->length() + 7) & ~size_t{7}), 0);
      if (b->length()) std::memcpy(out.data() + at, b->data(), b->length());
    }
  }
}

Value deserialize_tree(const uint8_t* data, size_t size) {
  Reader r{data, data + size};
  const uint64_t nstrings = r.u64();
  if (nstrings > size / 8) throw InvalidArgument("deserialize_tree: bad string count");
  Ref<RefArray> strings = RefArray::create(nstrings);
  for (uint64_t i = 0; i < nstrings; ++i) {
    const uint64_t n = r.u64();
    const uint8_t* bytes = r.take(n);
    strings->set(i, String::create({reinterpret_cast<const char*>(bytes), n}).value());
  }
  const uint64_t count = r.u64();
  if (count > size / 8) throw InvalidArgument("deserialize_tree: bad object count");
  Ref<RefArray> objects = RefArray::create(count);
  auto decode = [&](uint64_t w, uint64_t self) -> Value {
    if (w == 0 || (w & 1)) return Value::from_raw(w);
    if (w & kObjectBit) {
      const uint64_t k = w >> 2;
      if (k >= self) throw InvalidArgument("deserialize_tree: a reference that does not point backwards");
      return objects->get(k);
    }
    const uint64_t s = (w >> 2) - 1;
    if (s >= nstrings) throw InvalidArgument("deserialize_tree: string index out of range");
    return strings->get(s);
  };
  thread_local std::vector<Value> refs;
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t id = r.u64();
    const ClassInfo* c = find_class(static_cast<ClassId>(id));
    if (c == nullptr) throw InvalidArgument("deserialize_tree: unknown class id");
    Object* o = nullptr;
    if (c->layout == Layout::kFixed) {
      const uint8_t* words = r.take(c->instance_size);
      if ((c->tags & header::kDeeplyImmutable) != 0) {
        refs.clear();
        for (uint32_t off : c->ref_offsets) {
          uint64_t w;
          std::memcpy(&w, words + off, 8);
          refs.push_back(decode(w, k));
        }
        o = allocate_immutable_instance(c->id, refs.data(), refs.size());
      } else {
        o = allocate_instance(c->id);
      }
      char* payload = static_cast<char*>(o->payload());
      size_t ri = 0;
      for (uint32_t off = 0; off < c->instance_size; off += 8) {
        uint64_t w;
        std::memcpy(&w, words + off, 8);
        if (ri < c->ref_offsets.size() && c->ref_offsets[ri] == off) {
          ++ri;
          if ((c->tags & header::kDeeplyImmutable) == 0 && w != 0) store_field(o, off, decode(w, k));
        } else {
          std::memcpy(payload + off, &w, 8);  // plain data of a fresh object
        }
      }
    } else if (c->layout == Layout::kRefArray) {
      const uint64_t n = r.u64();
      if (n > static_cast<uint64_t>(r.end - r.p) / 8) throw InvalidArgument("deserialize_tree: truncated message");
      Ref<RefArray> a = RefArray::create(n);
      for (uint64_t i = 0; i < n; ++i) {
        const uint64_t w = r.u64();
        if (w != 0) a->set(i, decode(w, k));
      }
      o = a.object();
    } else if (c->layout == Layout::kByteArray) {
      const uint64_t n = r.u64();
      const uint8_t* bytes = r.take(n);
      Ref<ByteArray> b = ByteArray::create(n);
      if (n) std::memcpy(b->data(), bytes, n);
      o = b.object();
    } else {
      throw InvalidArgument("deserialize_tree: unexpected class " + c->name);
    }
    objects->set(k, Value::from_object(o));
  }
  if (r.p != r.end) throw InvalidArgument("deserialize_tree: trailing bytes");
  return count ? objects->get(count - 1) : Value::null();
}

}  // namespace shoal::ast
