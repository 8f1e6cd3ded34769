// AST forests as Shoal objects (ast/shoal_forest.h).
#include "ast/shoal_forest.h"

#include <map>
#include <mutex>
#include <string>

#include "ast/section_decoder.h"

namespace shoal::ast {

namespace {

// One class per kind signature (name and fields) per process: loading the same corpus
// twice, or two corpora with the same kinds, reuses the classes. The kinds of one file
// are distinct (CorpusFile checks), so each gets a class of its own.
ClassId node_class_for(const KindInfo& k) {
  static std::mutex mu;
  static std::map<std::string, ClassId> classes;
  // Length-prefixed, so no name or field can make two signatures collide.
  std::string signature = std::to_string(k.name.size()) + ':' + std::string(k.name);
  for (std::string_view field : k.fields) signature += std::to_string(field.size()) + ':' + std::string(field);
  std::lock_guard<std::mutex> lock(mu);
  auto it = classes.find(signature);
  if (it != classes.end()) return it->second;
  ClassDescriptor d;
  d.name = "ast." + std::string(k.name);
  d.layout = Layout::kFixed;
  d.instance_size = static_cast<uint32_t>(8 + 8 * k.fields.size());
  for (size_t i = 0; i < k.fields.size(); ++i) d.ref_offsets.push_back(static_cast<uint32_t>(8 + 8 * i));
  const ClassId id = define_class(d);
  classes.emplace(std::move(signature), id);
  return id;
}

}  // namespace

NodeClasses::NodeClasses(const CorpusFile& f) {
  for (size_t k = 0; k < f.kind_count(); ++k) {
    const ClassId id = node_class_for(f.kind(k));
    ids_.push_back(id);
    headers_.push_back(header::make(id, 0));
    bytes_.push_back(static_cast<uint32_t>(kHeaderSize + 8 + 8 * f.kind(k).fields.size()));
    if (kind_by_class_.size() <= id) kind_by_class_.resize(id + 1, -1);
    kind_by_class_[id] = static_cast<int>(k);
  }
}

StringTable::StringTable(Heap& heap, const CorpusFile& f)
    : file_(f), table_(heap, RefArray::create(f.string_count())) {}

Value StringTable::create(uint32_t id) {
  Ref<String> s = String::create(file_.string(id));
  const Value witness = table_->compare_and_swap(id, Value::null(), s.value());
  return witness.is_null() ? s.value() : witness;
}

ShoalBuilder::ShoalBuilder(Heap& heap, const CorpusFile&, const NodeClasses& classes, StringTable& strings)
    : heap_(heap), classes_(classes), strings_(strings) {}

void ShoalBuilder::begin_module(uint32_t node_count) {
  if (!table_ || table_->length() < node_count) {
    size_t n = table_ ? table_->length() : 1024;
    while (n < node_count) n *= 2;
    table_ = RefArray::create(n);
    if (keep_.empty()) keep_ = Persistent<RefArray>(heap_, table_);
    else keep_.set(table_);
  }
}

Value ShoalBuilder::int64(int64_t v) {
  if (v >= Value::kMinSmallInt && v <= Value::kMaxSmallInt) return Value::from_int(v);
  return make<AstInt>(AstInt{v}).value();
}

Value ShoalBuilder::bigint(uint32_t id) {
  Ref<String> digits = Ref<String>::from_value(strings_.get(id));
  return make_immutable<AstBigInt>([&](Initializer<AstBigInt>& in) { in.set(&AstBigInt::digits, digits); }).value();
}

Value ShoalBuilder::bytes(std::span<const uint8_t> b) {
  Ref<ByteArray> a = ByteArray::create(b.size());
  if (!b.empty()) std::memcpy(a->data(), b.data(), b.size());  // a fresh array of our own
  return a.value();
}

Value load_module(const CorpusFile& f, size_t m, ShoalBuilder& b) { return decode_module(f, m, b); }

void digest_tree(Value root, const NodeClasses& classes, DigestSink& sink) {
  thread_local std::vector<Value> stack;
  const ClassId int_id = class_id_of<AstInt>(), float_id = class_id_of<AstFloat>(),
                complex_id = class_id_of<AstComplex>(), bool_id = class_id_of<AstBool>(),
                ellipsis_id = class_id_of<AstEllipsis>(), bigint_id = class_id_of<AstBigInt>();
  ast::digest_tree(root, sink, stack, [&](Value v, DigestSink& s, std::vector<Value>& st) {
    if (v.is_null()) return s.none();
    if (v.is_int()) return s.int64(v.as_int());
    const Object* o = v.as_object();
    const ClassId id = o->class_id();
    const int kind = classes.kind_of(id);
    if (kind >= 0) {
      s.node(static_cast<uint32_t>(kind), NodeClasses::line(o));
      const size_t n = (class_info(id).instance_size - 8) / 8;
      const Slot* f = NodeClasses::fields(o);
      for (size_t i = n; i-- > 0;) st.push_back(f[i].load());
      return;
    }
    if (id == kRefArrayClassId) {
      const auto* a = static_cast<const RefArray*>(o->payload());
      s.list(a->length());
      for (size_t i = a->length(); i-- > 0;) st.push_back(a->slots()[i].load());
      return;
    }
    if (id == kStringClassId) return s.str(static_cast<const String*>(o->payload())->view());
    if (id == kByteArrayClassId) {
      const auto* b = static_cast<const ByteArray*>(o->payload());
      return s.bytes({b->data(), b->length()});
    }
    if (id == int_id) return s.int64(static_cast<const AstInt*>(o->payload())->value);
    if (id == float_id) return s.real(static_cast<const AstFloat*>(o->payload())->value);
    if (id == complex_id) {
      const auto* c = static_cast<const AstComplex*>(o->payload());
      return s.complex(c->re, c->im);
    }
    if (id == bool_id) return s.boolean(static_cast<const AstBool*>(o->payload())->value != 0);
    if (id == ellipsis_id) return s.ellipsis();
    if (id == bigint_id) {
      const Value d = static_cast<const AstBigInt*>(o->payload())->digits.value();
      return s.bigint(static_cast<const String*>(d.as_object()->payload())->view());
    }
    throw InvalidArgument("digest_forest: an object of class " + class_info(id).name + " in an AST");
  });
}

ForestDigest digest_forest(Ref<RefArray> forest, const NodeClasses& classes) {
  DigestSink sink(classes.kind_count());
  for (size_t m = 0; m < forest->length(); ++m) digest_tree(forest->get(m), classes, sink);
  return sink.finish();
}

}  // namespace shoal::ast
