// A multithreaded interpreter on Shoal: a tiny Lisp whose every value - numbers aside -
// lives on the Shoal heap, run by several threads at once on one heap.
//
//   tiny_lisp [--threads N] [--rounds R]
//
// What it shows a VM-prototype author:
//   - the language's data as managed structs (Pair, Lambda, Env, Builtin) with reference
//     fields, written only through Ref<T>::set (the write barrier);
//   - the interpreter's own C++ stack as the root set: Values in locals are found by the
//     conservative stack scan, so a recursive evaluator needs no handles;
//   - a global environment built once, then frozen (shoal::freeze) and read by every
//     thread without locks or copies; each thread defines into an environment of its own;
//   - interned symbols shared as deeply immutable Strings, and a trivially shareable heap
//     atomic (AtomicInt64) counting calls across threads;
//   - collections running concurrently with all of it; the heap verified at the end.
// Each thread runs the same programs and checks its answers; any wrong answer exits 1.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "shoal/shoal.h"

namespace lisp {

using shoal::Ref;
using shoal::Slot;
using shoal::Value;

struct Pair {
  Slot car, cdr;
  static constexpr auto kRefs = shoal::refs(&Pair::car, &Pair::cdr);
  static constexpr const char* kName = "lisp.Pair";
};
struct Lambda {
  Slot params, body, env;
  static constexpr auto kRefs = shoal::refs(&Lambda::params, &Lambda::body, &Lambda::env);
  static constexpr const char* kName = "lisp.Lambda";
};
struct Env {
  Slot bindings, parent;  // bindings: a list of (symbol . value) pairs
  static constexpr auto kRefs = shoal::refs(&Env::bindings, &Env::parent);
  static constexpr const char* kName = "lisp.Env";
};
enum Op : int64_t { kAdd, kSub, kMul, kLess, kEq, kCons, kCar, kCdr, kIsNull, kList };
struct Builtin {
  int64_t op = 0;
  static constexpr uint64_t kTags = shoal::header::kDeeplyImmutable;  // shareable from birth
  static constexpr const char* kName = "lisp.Builtin";
};

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("lisp: " + what); }

// Symbols: one String per name for the whole process (deeply immutable, so any thread
// may hold it); compared by identity. The table's handles keep them alive.
//
// The mutex is never held while allocating: a thread blocked on a std::mutex is running
// as far as the collector knows, so if the holder's allocation needed a pause, the two
// would wait for each other for ever. The String is made first, outside the lock
// (a thread that loses the race drops its copy).
class Symbols {
 public:
  explicit Symbols(shoal::Heap& heap) : heap_(heap) {}
  Value intern(std::string_view name) {
    if (Value v = find(name); !v.is_null()) return v;
    Ref<shoal::String> fresh = shoal::String::create(name);  // may reach a safepoint: no lock held
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = table_.try_emplace(std::string(name));
    if (inserted) it->second = shoal::Persistent<shoal::String>(heap_, fresh);  // no allocation on the heap
    return it->second.get().value();
  }

 private:
  Value find(std::string_view name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = table_.find(std::string(name));
    return it == table_.end() ? Value::null() : it->second.get().value();
  }
  shoal::Heap& heap_;
  std::mutex mu_;
  std::unordered_map<std::string, shoal::Persistent<shoal::String>> table_;
};

Value cons(Value a, Value b) {
  Ref<Pair> p = shoal::make<Pair>();
  p.set(&Pair::car, a);
  p.set(&Pair::cdr, b);
  return p.value();
}
Ref<Pair> as_pair(Value v) {
  Ref<Pair> p = shoal::try_cast<Pair>(v);
  if (!p) fail("not a pair");
  return p;
}
Value car(Value v) { return as_pair(v)->car.load(); }
Value cdr(Value v) { return as_pair(v)->cdr.load(); }
bool is_symbol(Value v) { return bool(shoal::try_cast<shoal::String>(v)); }

// --- Reader: text -> heap data ---------------------------------------------------------

class Reader {
 public:
  Reader(std::string_view text, Symbols& symbols) : text_(text), symbols_(symbols) {}
  bool at_end() {
    skip();
    return pos_ >= text_.size();
  }
  Value read() {
    skip();
    if (pos_ >= text_.size()) fail("unexpected end of input");
    const char c = text_[pos_];
    if (c == '(') {
      ++pos_;
      return read_list();
    }
    if (c == ')') fail("unexpected )");
    if (c == '\'') {
      ++pos_;
      const Value quoted = read();
      return cons(symbols_.intern("quote"), cons(quoted, Value::null()));
    }
    const size_t start = pos_;
    while (pos_ < text_.size() && !std::strchr("() \n\t'", text_[pos_])) ++pos_;
    const std::string_view atom = text_.substr(start, pos_ - start);
    char* end = nullptr;
    const std::string s(atom);
    const long long n = std::strtoll(s.c_str(), &end, 10);
    if (end && *end == '\0' && !s.empty() && s != "-") return Value::from_int(n);
    return symbols_.intern(atom);
  }

 private:
  Value read_list() {
    skip();
    if (pos_ >= text_.size()) fail("unterminated list");
    if (text_[pos_] == ')') {
      ++pos_;
      return Value::null();
    }
    const Value head = read();
    const Value tail = read_list();  // both are on this frame: roots while cons allocates
    return cons(head, tail);
  }
  void skip() {
    while (pos_ < text_.size()) {
      if (std::strchr(" \n\t", text_[pos_])) ++pos_;
      else if (text_[pos_] == ';') while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      else break;
    }
  }
  std::string_view text_;
  size_t pos_ = 0;
  Symbols& symbols_;
};

// --- Evaluator -------------------------------------------------------------------------

struct Interpreter {
  Symbols& symbols;
  shoal::AtomicInt64& calls;  // trivially shareable: every thread counts here
  Value s_quote, s_if, s_define, s_set, s_lambda, s_begin;

  Interpreter(Symbols& s, shoal::AtomicInt64& c)
      : symbols(s), calls(c), s_quote(s.intern("quote")), s_if(s.intern("if")), s_define(s.intern("define")), s_set(s.intern("set!")),
        s_lambda(s.intern("lambda")), s_begin(s.intern("begin")) {}

  // The (symbol . value) pair of the innermost binding of sym.
  static Value binding(Value env, Value sym) {
    for (Value e = env; !e.is_null(); e = shoal::cast<Env>(e)->parent.load())
      for (Value b = shoal::cast<Env>(e)->bindings.load(); !b.is_null(); b = cdr(b))
        if (car(car(b)) == sym) return car(b);
    fail("unbound symbol " + std::string(shoal::cast<shoal::String>(sym)->view()));
  }
  static Value lookup(Value env, Value sym) { return cdr(binding(env, sym)); }
  static void define(Value env, Value sym, Value v) {
    Ref<Env> e = shoal::cast<Env>(env);
    e.set(&Env::bindings, cons(cons(sym, v), e->bindings.load()));  // InvalidMutabilityError if frozen
  }
  static Value new_env(Value parent) {
    Ref<Env> e = shoal::make<Env>();
    e.set(&Env::parent, parent);
    return e.value();
  }

  Value eval(Value x, Value env) {
    for (;;) {  // loops instead of recursing for tail positions (if, begin, calls)
      if (x.is_int() || x.is_null()) return x;
      if (is_symbol(x)) return lookup(env, x);
      const Value op = car(x);
      if (op == s_quote) return car(cdr(x));
      if (op == s_if) {
        const Value test = eval(car(cdr(x)), env);
        const bool truthy = !(test.is_null() || (test.is_int() && test.as_int() == 0));
        x = truthy ? car(cdr(cdr(x))) : car(cdr(cdr(cdr(x))));
        continue;
      }
      if (op == s_define) {
        Value target = car(cdr(x));
        if (!is_symbol(target)) {  // (define (f args) body...)
          const Value lambda = make_lambda(cdr(target), cdr(cdr(x)), env);
          define(env, car(target), lambda);
          return car(target);
        }
        define(env, target, eval(car(cdr(cdr(x))), env));
        return target;
      }
      if (op == s_set) {  // (set! sym value): InvalidMutabilityError for a frozen binding
        const Value v = eval(car(cdr(cdr(x))), env);
        as_pair(binding(env, car(cdr(x)))).set(&Pair::cdr, v);
        return v;
      }
      if (op == s_lambda) return make_lambda(car(cdr(x)), cdr(cdr(x)), env);
      if (op == s_begin) {
        Value body = cdr(x);
        for (; !cdr(body).is_null(); body = cdr(body)) eval(car(body), env);
        x = car(body);
        continue;
      }
      // A call: evaluate the operator and the arguments (a fresh list on the heap).
      const Value f = eval(op, env);
      Value args = Value::null(), last = Value::null();
      for (Value a = cdr(x); !a.is_null(); a = cdr(a)) {
        const Value cell = cons(eval(car(a), env), Value::null());
        if (last.is_null()) args = cell;
        else as_pair(last).set(&Pair::cdr, cell);
        last = cell;
      }
      calls.fetch_add(1);
      if (Ref<Builtin> b = shoal::try_cast<Builtin>(f)) return apply_builtin(b->op, args);
      Ref<Lambda> l = shoal::try_cast<Lambda>(f);
      if (!l) fail("not a function");
      Value frame = new_env(l->env.load());
      Value p = l->params.load();
      for (; !p.is_null(); p = cdr(p), args = cdr(args)) define(frame, car(p), car(args));
      x = cons(s_begin, l->body.load());
      env = frame;
    }
  }

  Value make_lambda(Value params, Value body, Value env) {
    Ref<Lambda> l = shoal::make<Lambda>();
    l.set(&Lambda::params, params);
    l.set(&Lambda::body, body);
    l.set(&Lambda::env, env);
    return l.value();
  }

  static int64_t num(Value v) {
    if (!v.is_int()) fail("not a number");
    return v.as_int();
  }
  static Value apply_builtin(int64_t op, Value args) {
    switch (op) {
      case kAdd: return Value::from_int(num(car(args)) + num(car(cdr(args))));
      case kSub: return Value::from_int(num(car(args)) - num(car(cdr(args))));
      case kMul: return Value::from_int(num(car(args)) * num(car(cdr(args))));
      case kLess: return Value::from_int(num(car(args)) < num(car(cdr(args))) ? 1 : 0);
      case kEq: return Value::from_int(car(args) == car(cdr(args)) ? 1 : 0);
      case kCons: return cons(car(args), car(cdr(args)));
      case kCar: return car(car(args));
      case kCdr: return cdr(car(args));
      case kIsNull: return Value::from_int(car(args).is_null() ? 1 : 0);
      case kList: return args;
    }
    fail("bad builtin");
  }

  Value run(std::string_view program, Value env) {
    Reader reader(program, symbols);
    Value result = Value::null();
    while (!reader.at_end()) {
      const Value form = reader.read();
      result = eval(form, env);
    }
    return result;
  }
};

// The global environment: builtins and a prelude, then frozen: every thread reads it,
// nobody can change it.
Value make_globals(Symbols& symbols, shoal::AtomicInt64& calls) {
  Value env = Interpreter::new_env(Value::null());
  const std::pair<const char*, Op> builtins[] = {{"+", kAdd},   {"-", kSub},   {"*", kMul},   {"<", kLess},
                                                 {"=", kEq},    {"cons", kCons}, {"car", kCar}, {"cdr", kCdr},
                                                 {"null?", kIsNull}, {"list", kList}};
  for (const auto& [name, op] : builtins)
    Interpreter::define(env, symbols.intern(name), shoal::make<Builtin>(Builtin{op}).value());
  Interpreter in(symbols, calls);
  in.run(R"(
    (define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
    (define (range a b) (if (< a b) (cons a (range (+ a 1) b)) '()))
    (define (map f xs) (if (null? xs) '() (cons (f (car xs)) (map f (cdr xs)))))
    (define (sum xs) (if (null? xs) 0 (+ (car xs) (sum (cdr xs)))))
    (define (make-counter) (begin (define n 0) (lambda () (begin (set! n (+ n 1)) n))))
  )", env);
  shoal::freeze(env);
  return env;
}

}  // namespace lisp

int main(int argc, char** argv) {
  int threads = 4, rounds = 20;
  shoal::HeapOptions options;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--stop-the-world") == 0) options.concurrent_marking = false;
    else if (std::strcmp(argv[i], "--no-mark-assists") == 0) options.mark_assists = false;
    else if (std::strcmp(argv[i], "--no-aging") == 0) options.aging = false;
    else if (std::strcmp(argv[i], "--no-adaptive-generations") == 0) options.adaptive_generations = false;
    else if (i + 1 < argc && std::strcmp(argv[i], "--threads") == 0) threads = std::atoi(argv[++i]);
    else if (i + 1 < argc && std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--rounds N] [--stop-the-world] [--no-mark-assists] [--no-aging] [--no-adaptive-generations]\n", argv[0]);
      return 2;
    }
  }
  shoal::Heap heap(options);
  shoal::MutatorScope attach(heap);
  lisp::Symbols symbols(heap);
  shoal::Persistent<shoal::AtomicInt64> calls(heap, shoal::AtomicInt64::create());
  shoal::PersistentValue globals(heap, lisp::make_globals(symbols, *calls.get()));

  // Each program, and what it must return.
  const std::pair<const char*, int64_t> programs[] = {
      {"(fib 18)", 2584},
      {"(sum (map (lambda (x) (* x x)) (range 0 300)))", 8955050},
      {"(define c (make-counter)) (c) (c) (c)", 3},
      {"(define (loop i acc) (if (< i 1) acc (loop (- i 1) (cons i acc)))) (sum (loop 2000 '()))", 2001000},
  };
  std::vector<std::thread> workers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      shoal::MutatorScope worker(heap);
      lisp::Interpreter in(symbols, *calls.get());
      for (int r = 0; r < rounds; ++r)
        for (const auto& [program, expected] : programs) {
          const shoal::Value env = lisp::Interpreter::new_env(globals.get());  // this thread's own
          const shoal::Value v = in.run(program, env);
          if (!v.is_int() || v.as_int() != expected) {
            std::fprintf(stderr, "thread %d: %s gave a wrong answer\n", t, program);
            wrong.fetch_add(1);
          }
        }
      // The globals are frozen: changing them is refused, with a typed error.
      try {
        in.run("(set! fib 0)", lisp::Interpreter::new_env(globals.get()));
        wrong.fetch_add(1);
      } catch (const shoal::InvalidMutabilityError&) {
      }
    });
  shoal::run_native([&] {
    for (auto& w : workers) w.join();
  });
  heap.collect();
  const shoal::VerifyReport report = heap.verify();
  const shoal::GcStats stats = heap.stats();
  std::printf("tiny_lisp: %d threads x %d rounds, %lld calls, %llu collections (%llu young; max pause %.2f ms), "
              "peak footprint %.1f MiB, heap %s, answers %s\n",
              threads, rounds, static_cast<long long>(calls.get()->load()),
              static_cast<unsigned long long>(stats.collections),
              static_cast<unsigned long long>(stats.young_collections), static_cast<double>(stats.max_pause_ns) / 1e6,
              static_cast<double>(stats.peak_footprint_bytes) / 1048576.0,
              report.ok ? "verified" : "CORRUPT", wrong.load() == 0 ? "all correct" : "WRONG");
  return report.ok && wrong.load() == 0 ? 0 : 1;
}
