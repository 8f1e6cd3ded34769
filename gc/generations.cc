// Generations without moving: sticky mark bits and a remembered set (Demers et al.,
// "Combining generational and conservative garbage collection", POPL 1990; WebKit's
// Riptide, ../shared/READING.md).
//
// The old generation is the set of marked objects. With generations on every sweep
// keeps the marks (Collector::generational), leaving every traced survivor marked;
// objects allocated after that carry the header's young bit and no mark. A young cycle
// is a concurrent cycle like any other (gc/collector.h), except that:
//   - the initial pause does not clear marks, so the marker stops at old objects (they
//     are "already marked") and traces only young ones reached from the roots or from
//     the remembered set;
//   - the remembered set's holders - old objects the write barrier saw store a young
//     reference - join the grey list as if the snapshot had reached them: their slots
//     are traced (strong slots marked, weak slots recorded for clearing, ephemerons
//     resolved), and the SATB barrier protects their snapshot edges like any grey
//     object's;
//   - the sweep frees unmarked (dead young) cells and keeps the marks again.
// A full cycle starts with no marks (cleared just before its initial pause, or in the
// stop-the-world pause of collect()) and traces everything; the remembered set is then
// stale and its holders' bits are cleared by the marker thread, off the pause.
//
// Newborns. An object allocated while a cycle marks is black for that cycle - its
// TLAB's flush marks it - so the cycle cannot free it (unless its thread allocated it
// white, before its own stack's scan: gc/thread_stack_scan.cc; then it is newborn too,
// and survives only if the cycle marks it). It is not old, though: it also
// carries the cycle's newborn header bit and is recorded in its page's newborn bitmap
// (PageInfo::newborn_bits), and the sweep (gc/sweeper.cc), after keeping it, clears its
// mark. It is then young like everything allocated since, and the next cycle keeps it
// only if it is reachable then. (Before, newborns stayed marked: a program building
// big short-lived structures while cycles mark filled the old generation with garbage
// only a full cycle could free - binary-trees' in-progress trees.) The cycles alternate
// between two newborn bits (and two remembered-next bits, below), so a cycle tells its
// own newborns - fresh, never traced by it, exempt from the barrier's marking rule -
// from the last cycle's, which are ordinary young objects now. A marker clears every
// generational bit of an object it traces except the marking cycle's own two
// (Collector::marker_keeps), so by the time a bit's parity comes round again (two
// cycles later) no object still has it from before: last cycle's newborns and
// remembered-next holders are either traced by this cycle, freed by it, or (a full
// cycle's stale remembered set) cleared by clear_stale_remembered. Large objects
// allocated while marking carry no newborn bit and stay marked (old).
//
// The generational invariant (between cycles, marks sticky): every marked object that
// holds a reference (strong, weak or ephemeron) to an unmarked object has a remembered
// bit (kRemembered or a remembered-next bit) and is on the remembered set (a thread's
// buffer or the collector's list). Why it holds:
//   - At the end of a cycle every traced survivor is marked (the sweep freed the rest),
//     and the only unmarked survivors are its newborns. A marked object can reference a
//     newborn only through a store made while the cycle marked (a newborn did not exist
//     before), and every such store recorded its holder (the barrier's marking rule,
//     below) - unless the holder is itself a newborn, young after the sweep too.
//   - Afterwards an old-to-young edge can only be made by a store of a young reference
//     into an old object, and every reference store runs the barrier
//     (include/shoal/write_barrier.h): the holder is young or newborn (nothing to do),
//     remembered (done), or old - then it is remembered, in the same no-preempt region
//     as the store, so no pause falls between them. write_weak finds the holder from the
//     slot.
//   - Young means "allocated since the last cycle's final pause, or while it marked,
//     and not traced": the young bit is set at allocation (MutatorState::alloc_tags)
//     while no marking runs, the cycle's newborn bit while it marks, and the marker
//     clears both when it traces an object (bar the marking cycle's own newborn bit, on
//     objects it traced before their TLAB flushed: they are unmarked by the sweep
//     anyway). So after the sweep "marked" and "young or newborn" never hold together.
//   - The marking rule: while a generational cycle marks, a store of a young or newborn
//     reference into a holder with neither this cycle's newborn nor its remembered-next
//     bit sets that bit and records the holder (remember_while_marking_slow). Needed
//     because the marker may trace a young holder concurrently with the store: reading
//     the holder's young bit before the marker clears it and storing after the marker
//     read the slot, a barrier testing "is the holder old?" would skip a holder that is
//     old at the end, with a newborn in the slot the marker never saw. The rule reads
//     only bits the marker never clears, so no interleaving defeats it; the cost is
//     entries for young holders too (bounded: one per holder per cycle). Stores made
//     while a cycle marks need no entry *for that cycle* - the stored reference is
//     marked by its end (the snapshot argument, barriers/write_barrier.h, or for stacks
//     scanned after the initial pause the weak-tricolour one, gc/thread_stack_scan.cc)
//     - the entries serve the next cycle, so the barrier shades the holder while marking
//     runs: it must still be allocated then.
// The verifier checks the invariant (gc/verifier.cc).
//
// Aging (HeapOptions::aging). A young object becomes old only at the second young cycle
// that traces it. In a young cycle the marker (gc/marker.cc, drain_some) sorts what it
// traces by the header it finds:
//   - this cycle's newborn: as above (young after the sweep);
//   - young (young bit or the last cycle's newborn bit) without the last cycle's aged
//     bit, in a page: kept young. It gets this cycle's aged bit (kAgedEven/kAgedOdd,
//     alternating like the newborn bits; marker_keeps includes it) and keeps its young
//     bit, and its page's newborn bitmap gets its bit (atomically: the page's owner
//     flushes into the same words; PageInfo::kept_young tells the sweep to look), so
//     the sweep clears its mark as it does a newborn's;
//   - anything else - old (a remembered holder), young with the last cycle's aged bit,
//     or large - is old after the cycle: its generational bits are cleared as before.
// Full cycles age nothing: everything they trace is old after them, and the aged bits
// go with the rest. By the time a parity comes round again every object with that
// aged bit was traced by the cycle in between (made old) or freed by it (young and
// unmarked), as for the newborn bits.
//   The invariant, for the objects kept young: a marked object can reference one through
// an edge made before the cycle (a remembered holder's, or one inside a structure the
// cycle makes old) or a store made while it marks. The stores are the marking rule's
// (the value is young throughout: the kept-young object's young bit is never cleared).
// The edges are the marker's: after tracing an object that will be old, it tests what
// its slots reference (strong, weak, ephemeron keys and values), and if one is young
// without the last cycle's aged bit - kept young, or not reached yet and perhaps never
// (conservative: an entry for nothing costs the next cycle one trace) - it remembers
// the object for the next cycle: this cycle's remembered-next bit and the marker's
// list (Collector::add_marker_remembered), or for a large object the slot's card in
// the set the barrier records into, listed once. The test is exact about the aged
// bits: the last cycle's aged bit is set only by that cycle and cleared only when this
// cycle makes the object old (one atomic update that also clears its young bit), so a
// young object with it is never kept young, and one without it never made old.
//   Holders are not remembered unless marked: a young holder on the remembered set (a
// marking-rule entry) is traced whether or not it is still alive, and if nothing marks
// it the sweep frees it - an entry for it would then dangle. If it is marked later it
// is traced again and remembered then. The verifier checks every remembered-set entry
// is an allocated object.
//
// Adaptive aging (HeapOptions::adaptive_aging). Aging pays when what a young cycle keeps
// young mostly dies before the next one (a structure in progress); when it mostly lives
// on, the second trace is all it brings, and keeping it young also keeps its garbage
// out of the old generation's growth that paces full cycles - a program that churns a
// large live set at random lost throughput and memory to it. So the cycles measure:
//   - a cohort: what a young cycle keeps young (the markers add up the cell bytes, at
//     the end of each drain: Collector::note_aging; the record's bytes_kept_young), and
//     what of it the next cycle - young or full, aging or not - traces, i.e. finds
//     alive (objects with the last cycle's aged bit, aged_counted; the record's
//     bytes_aged_promoted). Exact, up to an unmarked remembered holder traced twice;
//   - the old generation's survival: a generational full cycle's bytes of old objects
//     (no young bit) traced, over the old generation's size when it began (the
//     record's old_bytes_survived / old_bytes_before).
// Young survival is made old / kept young summed over the cohorts, each older cohort's
// bytes halved at each new one (kAgingSampleDecay: one small cohort met alive by two
// quick cycles - a tree in progress - must not outvote large ones that died). A cohort
// of at least kAgingMinSample measured while aging is on decides (smaller ones, and the
// cohort of the cycle that turned aging off, are only weighed): aging is turned off for
// the next kAgingMinBackoff young cycles when survival exceeds, at kAgingStrikes
// deciding cohorts in a row (a program's long-lived structures are young too while it
// builds them at its start), the lower of
//   - kAgingMaxSurvival (a half). A byte made old costs about two bytes of full-cycle
//     tracing later (a full cycle, tracing the live size L, comes once the old
//     generation has grown by L/2), so per byte kept young aging costs the survivors'
//     second trace and their later share of full cycles, 3 x survival, against the
//     2 bytes making it old would cost, plus the header updates: about even at a half;
//   - the old generation's survival. If the old objects of a program survive the span
//     between two full cycles no better than its young survivors survive one young
//     cycle, age does not predict death there (random churn) and aging only delays the
//     full cycle that frees the same garbage anyway. (The old generation's survival
//     spans several young cycles, so the comparison leans towards "off".)
// Once aging has been turned off, one failed cohort turns it off again, for twice as
// long each time up to kAgingMaxBackoff young cycles; a cohort that passes starts all
// over (two strikes, the minimum off period). While on probation like this, what a
// young cycle keeps young counts towards the old generation's growth until the next
// cycle (provisional_old_bytes, in old_generation_full): a sample then costs no more
// memory than promoting would have - the full cycle comes when it would have without
// aging, and measures the cohort itself.
//   Turning aging on or off between cycles needs nothing more than the full cycles'
// argument above: a cycle without aging makes every young object it traces old and
// clears aged bits, and the one after it finds no aged bit of its predecessor's parity
// to promote.
//
// Young cycles that do not pay (HeapOptions::adaptive_generations). A young cycle
// saves work only while few young objects survive it, and costs memory: what it
// promotes and then dies waits for the next full cycle. So each concurrent cycle's
// sweep report measures young survival s - of the young bytes traced or freed, the
// share traced: bytes marked less the old objects traced (a young cycle's remembered
// holders; a full cycle's surviving old generation), bytes freed less, for a full
// cycle, the old generation that died - so a full cycle's figure is what a young cycle
// in its place would have found - and each full cycle the old generation's survival
// (note_cycle_yield). With budget B = g L between cycles and a full cycle once young
// cycles promoted f L, k = f / (s g) young cycles come per full one; per such period
// the collector traces f L + L and frees (k + 1) B, full cycles alone L per B. Young
// cycles must save a third of that work for the f L of memory they cost: (1 + f) /
// (k + 1) <= 2/3, i.e. s <= young_survival_limit() (0.4 at the defaults). The model
// assumes what they promote mostly dies, so the pacer starts full cycles only
// (choose_full_before_pause: Scope::kPaced cycles; asked-for scopes are kept) when s
// passes the limit and old objects survive no better than young ones and under 3/4,
// both measured by one full cycle (a young cycle that meets a big structure in
// progress is no trend) - not for a structure being built, whose old generation lives
// on. Young cycles return below 0.8 of the limit, when old objects survive 1.25 times
// better, or at an old survival of 0.85: margins, because the measures differ by
// regime (a full cycle's old survival spans several young cycles in the mixed one).
// Only the full cycle's own measure of the old generation turns young cycles off -
// full cycles are rare while young ones pay, and a figure measured in an earlier phase
// must not judge a new one (a build after churn; in binary-trees, the first full
// cycle's, which freed the stretch tree, a hundred cycles later turned a young cycle of
// the last, big trees full, and the goal from its live size raised the peak by a
// third). While off, full cycles keep measuring their young part: no probing young
// cycle, which would raise the peak.
// Nothing else changes between the regimes: a full cycle clears the marks before it
// starts, and barrier, remembered set and cards are maintained throughout. (Large
// objects count at their object size when traced and at their allocation size in the
// old generation's size: their old survival reads up to a fifth low.)
//
// Cards. A remembered holder is traced whole by the young cycle that takes it, which is
// right for small objects and wrong for large ones: one young store into a 64 MiB
// array would cost every young cycle the array. So a large object (heap/
// large_object_space.h) is remembered by card instead: the barrier's slow paths get
// the slots the store writes, dirty their 512-byte cards and list the object (once per
// card set: LargeObject::listed, not a header bit - later stores into other cards must
// still reach the slow path, so a large holder never takes a remembered bit). A young
// cycle's marker thread traces only the slots in the dirty cards (Marker::
// trace_dirty_cards: strong slots marked, weak slots recorded, an ephemeron whose key or
// value slot lies in a dirty card resolved) and cleans them. For cards the invariant
// reads: a marked large object's slot holding a reference to an unmarked object lies in
// a dirty card of the pending card set, and the object is listed for that set.
//   The concurrent catch is the one the remembered-next bits solve for objects: the
// marker cleans a card after tracing it, and a store made while the cycle marks must
// not be lost to that cleaning - its value may be a newborn, young again after the
// sweep. So there are two card sets, and a cycle consumes the one the barrier recorded
// into until its initial pause, while from that pause on the barrier records into the
// other (card_record_set_ = odd_cycle_, flipped with it): no mutator writes the set
// being consumed, and the set recorded into starts clean - the previous cycle consumed
// (young) or dropped (full: clear_stale_remembered, on the marker thread before that
// cycle's final pause) it. A stop-the-world cycle traces everything and cleans both
// sets in its pause. Stores made while a cycle marks shade the holder when they list
// it, as for objects, so a listed holder is alive when its cards are read. Plain-store
// stretches (a list's growth, a map's rehash) pass the slots they may write.
//
// Pacing: a cycle starts after gc_growth x L bytes of allocation (at least
// min_gc_trigger). L comes from the newest full cycle: what its sweep kept (newborns
// included), but with floating garbage counted only up to the bytes it marked
// (HeapImpl::pacing_size) - on a heap whose cycles run long next to what they mark,
// what is allocated while they mark is many times the live data, from which a goal
// would grow cycle after cycle (a 4-thread interpreter with 5 KiB live reached ~85 MiB
// so). Not the old generation's marked bytes either, which include old garbage a young
// cycle cannot see. The kind is chosen just before the initial pause
// (choose_full_before_pause, under gc_mu_, the last sweep finished so the old
// generation's size is exact): full when requested or once the old generation (newborns
// excluded) has grown by more than full_gc_growth x max(L, min_gc_trigger) since the
// newest full cycle's sweep; a full cycle's marks are
// cleared right there, not in the pause. Explicit collect() is a full stop-the-world
// cycle. Sweep reports are serialised (report_mu_) so that a stale report from the
// marker thread's background sweep cannot land after a later pause's own.
#include <algorithm>

#include "gc/collector.h"
#include "heap/heap_impl.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

namespace {
// Adaptive aging ("Adaptive aging" above).
constexpr double kAgingMaxSurvival = 0.5;              // of the sample, made old: aging off
constexpr size_t kAgingMinSample = size_t{256} << 10;  // smaller samples decide nothing
constexpr double kAgingSampleDecay = 0.5;              // an older sample's weight, each new one
constexpr unsigned kAgingStrikes = 2;                  // failed samples in a row to turn it off
constexpr unsigned kAgingMinBackoff = 4;               // young cycles without aging, doubling
constexpr unsigned kAgingMaxBackoff = 64;              // on each failed sample up to this
// Adaptive generations ("Young cycles that do not pay" above).
constexpr size_t kYieldMinSample = size_t{1} << 20;  // young traced + freed: less measures nothing
constexpr double kYoungMinSaving = 1.0 / 3.0;        // of the work per byte freed, for their memory
constexpr double kYoungResumeFraction = 0.8;         // of the survival limit: young cycles back on,
constexpr double kOldResumeMargin = 1.25;            // or old objects survive this much better;
constexpr double kOldGarbageSurvival = 0.75;         // off only if old survival is below this too,
constexpr double kOldLivesOn = 0.85;                 // and back on at this or above;
}  // namespace

void Collector::hand_over_remembered(MutatorThread* t) {
  if (t->remembered.empty()) return;
  MutexLock lock(work_mu_);
  remembered_.insert(remembered_.end(), t->remembered.begin(), t->remembered.end());
  t->remembered.clear();
}

void Collector::add_marker_remembered(std::vector<Object*>& holders) {
  if (holders.empty()) return;
  MutexLock lock(marker_remembered_mu_);
  marker_remembered_.insert(marker_remembered_.end(), holders.begin(), holders.end());
  holders.clear();
}

void Collector::for_each_remembered_in_pause(const std::function<void(Object*)>& fn) {
  for (MutatorThread* t : heap_.threads.threads_in_pause())
    for (Object* o : t->remembered) fn(o);
  {
    MutexLock lock(work_mu_);
    for (Object* o : remembered_) fn(o);
    for (Object* o : stale_remembered_) fn(o);
  }
  MutexLock lock(marker_remembered_mu_);
  for (Object* o : marker_remembered_) fn(o);
}

std::vector<Object*> Collector::take_remembered_in_pause() {
  std::vector<Object*> all;
  {
    MutexLock lock(work_mu_);
    all.swap(remembered_);
  }
  {
    MutexLock lock(marker_remembered_mu_);
    all.insert(all.end(), marker_remembered_.begin(), marker_remembered_.end());
    marker_remembered_.clear();
  }
  for (MutatorThread* t : heap_.threads.threads_in_pause()) {
    all.insert(all.end(), t->remembered.begin(), t->remembered.end());
    t->remembered.clear();
  }
  return all;
}

void Collector::set_allocation_tags_in_pause(uint64_t tags, uint64_t remember_skip) {
  alloc_tags_.store(tags, std::memory_order_relaxed);
  marking_remember_skip_.store(remember_skip, std::memory_order_relaxed);
  for (MutatorThread* t : heap_.threads.threads_in_pause()) {
    t->alloc_tags = tags;
    t->marking_remember_skip = remember_skip;
    t->card_record_set = card_record_set_.load(std::memory_order_relaxed);
  }
}

void Collector::clear_all_marks() {
  for (size_t i = 0; i < heap_.pages.carved_pages(); ++i) heap_.pages.page_at(i).mark_bits.clear_all();
  heap_.large.clear_marks();
}

// (L may exceed the old generation right after a full cycle - by the newborns it
// counts, up to the bytes marked: intended, as without generations, pacing_size.)
size_t Collector::pacing_live() const {
  const size_t old = old_bytes_.load(std::memory_order_relaxed);
  if (!full_cycle_seen_.load(std::memory_order_relaxed)) return old;
  return HeapImpl::pacing_size(kept_after_full_.load(std::memory_order_relaxed),
                               live_after_full_.load(std::memory_order_relaxed));
}

bool Collector::old_generation_full() const {
  const double base = static_cast<double>(std::max(pacing_live(), heap_.options.min_gc_trigger));
  const size_t old = old_bytes_.load(std::memory_order_relaxed);
  const size_t start = std::min(old, old_after_full_.load(std::memory_order_relaxed));
  const size_t provisional = provisional_old_bytes_.load(std::memory_order_relaxed);  // (adaptive aging)
  return static_cast<double>(old - start + provisional) > base * heap_.options.full_gc_growth;
}

bool Collector::choose_full_before_pause(Scope scope) {
  full_for_yield_ = false;
  if (!generational_) return true;
  bool full = scope == Scope::kFull || old_generation_full() || heap_.limits_want_full();
  if (!full && scope == Scope::kPaced && young_cycles_off_.load(std::memory_order_relaxed)) {
    full = true;
    full_for_yield_ = true;  // (the cycle's record says why)
  }
  // A full cycle starts from no marks. Clear them here, before the pause, on the thread
  // starting the cycle: the last sweep has finished, nothing reads marks between cycles
  // (the barrier reads header bits; the verifier runs under gc_mu_, held here), and no
  // cycle can start meanwhile (gc_mu_).
  if (full) clear_all_marks();
  return full;
}

size_t Collector::begin_generation_in_pause(bool full, std::vector<Object*>& remembered_grey) {
  young_ = generational_ && !full;
  if (!generational_) return 0;
  std::vector<Object*> remembered = take_remembered_in_pause();
  // Black allocation, tagged newborn (this cycle's bit); the barrier's marking rule skips
  // holders with this cycle's newborn or remembered-next bit; the marker keeps both.
  odd_cycle_ = !odd_cycle_;
  const uint64_t newborn = odd_cycle_ ? header::kNewbornOdd : header::kNewbornEven;
  const uint64_t remembered_next = odd_cycle_ ? header::kRememberedNextOdd : header::kRememberedNextEven;
  // Cards: this cycle consumes the set recorded into until now; the barrier records
  // into the other, which the previous cycle left clean ("Cards" above).
  const unsigned consumed = card_record_set_.load(std::memory_order_relaxed);
  card_record_set_.store(odd_cycle_ ? 1 : 0, std::memory_order_relaxed);
  SHOAL_DCHECK(card_record_set_.load(std::memory_order_relaxed) != consumed);
  card_pending_set_.store(consumed, std::memory_order_relaxed);
  set_allocation_tags_in_pause(newborn, newborn | remembered_next);  // (and the threads' card set)
  // Aging: young objects with the last cycle's aged bit are made old when traced; the
  // rest of the young ones it traces get this cycle's, which the marker keeps.
  // Adaptive aging may have turned it off for this young cycle ("Adaptive aging").
  bool aging = young_ && heap_.options.aging;
  if (aging && aging_off_cycles_ > 0) {
    --aging_off_cycles_;
    aging = false;
  }
  // Adaptive aging's measurements: any cycle after one that kept objects young counts
  // what of that cohort it traces (objects with its aged bit), and a full cycle what of
  // the old generation is still alive.
  const uint64_t aged_last = kept_young_by_last_cycle_ != 0 ? (odd_cycle_ ? header::kAgedEven : header::kAgedOdd) : 0;
  aged_counted_.store(aged_last, std::memory_order_relaxed);
  old_before_full_ = young_ ? 0 : old_bytes_.load(std::memory_order_relaxed);
  counting_old_.store(true, std::memory_order_relaxed);  // (young cycles: the remembered holders traced)
  const uint64_t aged = aging ? (odd_cycle_ ? header::kAgedOdd : header::kAgedEven) : 0;
  aged_by_this_cycle_.store(aged, std::memory_order_relaxed);
  aged_to_promote_.store(aging ? (header::kAgedBits & ~aged) : 0, std::memory_order_relaxed);
  marker_keeps_.store(newborn | remembered_next | aged, std::memory_order_relaxed);
  MutexLock lock(work_mu_);
  if (young_) {
    // Old holders of young references: grey, traced like the snapshot's objects - but
    // large ones by their dirty cards, which the marker thread traces.
    for (Object* o : remembered) {
      if (heap_.pages.contains(o)) remembered_grey.push_back(o);
      else remembered_carded_.push_back(LargeObject::of(o));
    }
    return remembered.size();
  }
  stale_remembered_.insert(stale_remembered_.end(), remembered.begin(), remembered.end());
  return 0;
}

size_t Collector::trace_remembered_cards(MarkTotals& totals) {
  std::vector<LargeObject*> carded;
  {
    MutexLock lock(work_mu_);
    carded.swap(remembered_carded_);
  }
  if (carded.empty()) return 0;
  // The set this cycle consumes: no mutator writes it while the cycle marks (they
  // record into the other), so it is read and cleaned with plain accesses.
  const unsigned set = card_pending_set_.load(std::memory_order_relaxed);
  Marker m(heap_);
  size_t cards = 0;
  for (LargeObject* l : carded) {
    // Old (marked), or this young cycle would lose what its clean cards reference.
    SHOAL_DCHECK(l->mark.load(std::memory_order_relaxed) != 0);
    cards += m.trace_dirty_cards(*l, set);
    l->clean_cards(set);
  }
  totals.add(m);  // (its weak slots and ephemerons: the holders are black)
  if (m.has_grey()) give_grey(m.take_grey());
  return cards;
}

void Collector::forget_remembered(Object* o, uint64_t keep, unsigned card_sets) {
  if (heap_.pages.contains(o)) {
    o->clear_gc_bits(header::kRememberedBits & ~keep);
    return;
  }
  LargeObject* l = LargeObject::of(o);
  for (unsigned set = 0; set < kCardSets; ++set)
    if ((card_sets >> set & 1) != 0) l->clean_cards(set);
}

void Collector::clear_stale_remembered() {
  std::vector<Object*> stale;
  {
    MutexLock lock(work_mu_);
    stale.swap(stale_remembered_);
  }
  // Holders recorded before a full cycle's initial pause are still allocated (old
  // objects are freed only by a full cycle's sweep, which comes after this). A holder
  // the barrier re-records meanwhile may lose its bit here and be recorded twice later:
  // harmless (traced twice).
  // (Not this cycle's remembered-next bit: those holders are on a buffer for the next;
  // nor the card set the barrier records into now.)
  const uint64_t keep = marker_keeps_.load(std::memory_order_relaxed);
  const unsigned consumed = 1u << (card_record_set_.load(std::memory_order_relaxed) ^ 1);
  for (Object* o : stale) forget_remembered(o, keep, consumed);
}

size_t Collector::generational_budget() const {
  // gc_growth x L (pacing_live, "Pacing" above): the old generation's marked bytes also
  // count old garbage a young cycle cannot see, and a trigger grown from them would let
  // the heap grow with that garbage. (Tried and
  // measured, docs/performance.md: shrinking the budget towards a heap goal of
  // (1 + gc_growth) x live once a full cycle is due - less memory, many more cycles.)
  const double live = static_cast<double>(pacing_live());
  return std::max(heap_.options.min_gc_trigger, saturating_size(live * heap_.options.gc_growth));
}

void Collector::note_old_generation(size_t old_bytes, size_t newborn_bytes) {
  // After a sweep that keeps marks every survivor but the newborns is marked: this is
  // the old generation exactly. After a full cycle it is also the size the old
  // generation's growth is measured from; and with the newborns (capped by the bytes
  // marked: pacing_live) what L comes from.
  old_bytes_.store(old_bytes, std::memory_order_relaxed);
  if (!last_cycle_young_.load(std::memory_order_relaxed)) {
    old_after_full_.store(old_bytes, std::memory_order_relaxed);
    kept_after_full_.store(old_bytes + newborn_bytes, std::memory_order_relaxed);
  }
  set_generational_goal(old_bytes, newborn_bytes);
}

void Collector::set_generational_goal(size_t old_bytes, size_t young_bytes) {
  const size_t old_start = old_after_full_.load(std::memory_order_relaxed);
  const size_t old_growth = old_bytes > old_start ? old_bytes - old_start : 0;
  heap_.set_paced_goal(generational_budget(), old_bytes + young_bytes, old_growth);
}

void Collector::end_generation_in_pause(CycleRecord& record) {
  if (!generational_) return;
  const size_t bytes_marked = record.bytes_marked;
  // (Every marker of the cycle has drained: the sums are complete.)
  const size_t kept = aging_kept_bytes_.exchange(0, std::memory_order_relaxed);
  const size_t promoted = aging_promoted_bytes_.exchange(0, std::memory_order_relaxed);
  record.aging = aged_by_this_cycle_.load(std::memory_order_relaxed) != 0;
  record.bytes_kept_young = kept;
  record.bytes_aged_promoted = promoted;
  if (aged_counted_.exchange(0, std::memory_order_relaxed) != 0 && heap_.options.adaptive_aging)
    adapt_aging_in_pause(promoted);
  kept_young_by_last_cycle_ = kept;  // (0 unless this cycle aged)
  // On probation (aging has failed a sample before), what this cycle kept young counts
  // towards the old generation's growth until the next cycle ("Adaptive aging").
  provisional_old_bytes_.store(aging_backoff_cycles_ > 0 ? kept : 0, std::memory_order_relaxed);
  const size_t old_survived = old_traced_bytes_.exchange(0, std::memory_order_relaxed);
  // (For note_cycle_yield: a full cycle's old generation before it and traced; a young
  // cycle's old objects traced - the remembered holders.)
  last_old_before_.store(old_before_full_, std::memory_order_relaxed);
  last_old_survived_.store(old_survived, std::memory_order_relaxed);
  if (counting_old_.exchange(false, std::memory_order_relaxed) && !young_) {
    record.old_bytes_before = old_before_full_;
    record.old_bytes_survived = old_survived;
    if (old_before_full_ >= kAgingMinSample)
      old_survival_ = std::min(1.0, static_cast<double>(old_survived) / static_cast<double>(old_before_full_));
  }
  last_cycle_young_.store(young_, std::memory_order_relaxed);
  // An estimate until the sweep reports the exact figure (note_old_generation).
  if (!young_) {
    full_cycle_seen_.store(true, std::memory_order_relaxed);
    live_after_full_.store(bytes_marked, std::memory_order_relaxed);
    old_bytes_.store(bytes_marked, std::memory_order_relaxed);
    old_after_full_.store(bytes_marked, std::memory_order_relaxed);
    kept_after_full_.store(bytes_marked, std::memory_order_relaxed);
  }
  set_allocation_tags_in_pause(header::kYoung, 0);
  marker_keeps_.store(0, std::memory_order_relaxed);
  aged_by_this_cycle_.store(0, std::memory_order_relaxed);
  aged_to_promote_.store(0, std::memory_order_relaxed);
  card_pending_set_.store(card_record_set_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  young_ = false;
}

void Collector::note_cycle_yield(size_t freed_pages) {
  if (!heap_.options.adaptive_generations) return;
  const size_t traced = last_marked_bytes_.load(std::memory_order_relaxed);
  const size_t freed = freed_pages + last_large_freed_.load(std::memory_order_relaxed);
  const size_t old_before = last_old_before_.load(std::memory_order_relaxed);
  const size_t old_traced = last_old_survived_.load(std::memory_order_relaxed);
  const bool full_cycle = !last_cycle_young_.load(std::memory_order_relaxed);
  // The young objects' share: what is traced less the old objects traced (a young
  // cycle's remembered holders; a full cycle's surviving old generation), what is freed
  // less the old generation that died (none in a young cycle) - for a full cycle, what
  // a young cycle in its place would have found.
  const size_t young_traced = traced - std::min(traced, old_traced);
  size_t young_freed = freed;
  bool old_measured = false;  // by this cycle
  if (full_cycle) {
    const size_t old_survived = std::min(old_traced, old_before);
    old_measured = old_before >= kYieldMinSample;
    if (old_measured)
      old_survival_measured_.store(static_cast<double>(old_survived) / static_cast<double>(old_before),
                                   std::memory_order_relaxed);
    young_freed -= std::min(young_freed, old_before - old_survived);
  }
  if (young_traced + young_freed < kYieldMinSample) return;  // (too little to tell)
  const double young = static_cast<double>(young_traced) / static_cast<double>(young_traced + young_freed);
  young_survival_.store(young, std::memory_order_relaxed);
  const double old = old_survival_measured_.load(std::memory_order_relaxed);
  const double limit = young_survival_limit();
  // Off only on both survivals measured by this one full cycle: not on a young cycle
  // that happened to meet a big structure in progress, nor on an old survival measured
  // in an earlier phase. (While off, every paced cycle is full and measures both, so
  // `old` is current when the test to bring young cycles back reads it.)
  if (old_measured && young > limit && old < std::min(young, kOldGarbageSurvival)) {
    young_cycles_off_.store(true, std::memory_order_relaxed);
  } else if (young_cycles_off_.load(std::memory_order_relaxed) &&
             (young < limit * kYoungResumeFraction || old > young * kOldResumeMargin || old >= kOldLivesOn)) {
    young_cycles_off_.store(false, std::memory_order_relaxed);
  }
}

double Collector::young_survival_limit() const {
  // With young survival s, budget B = g L between cycles and a full cycle once young
  // cycles have promoted f L: k = f / (s g) young cycles per full one. Per such period
  // the collector traces f L + L and frees (k + 1) B; full cycles alone trace L per B.
  // Work per byte freed, mixed over alone: (1 + f) / (k + 1) <= 1 - saving
  //   <=> k + 1 >= (1 + f) / (1 - saving)  <=>  s <= f / (g ((1 + f) / (1 - saving) - 1)).
  const double f = heap_.options.full_gc_growth, g = heap_.options.gc_growth;
  return f / (g * ((1 + f) / (1 - kYoungMinSaving) - 1));
}

void Collector::adapt_aging_in_pause(size_t aged_promoted) {
  const size_t sample = kept_young_by_last_cycle_;
  if (sample == 0) return;
  // Byte-weighted, older samples halved each time: one small cohort that happened to
  // be alive (a tree in progress met by two quick cycles) does not outvote large ones.
  aging_sample_kept_ = aging_sample_kept_ * kAgingSampleDecay + static_cast<double>(sample);
  aging_sample_made_old_ = aging_sample_made_old_ * kAgingSampleDecay + static_cast<double>(aged_promoted);
  // (Too small to decide, or aging is off already - the cohort of the cycle that turned
  // it off, measured by the next: only weighed.)
  if (sample < kAgingMinSample || aging_off_cycles_ > 0) return;
  const double survived = aging_sample_made_old_ / aging_sample_kept_;
  if (survived > std::min(kAgingMaxSurvival, old_survival_)) {
    // What the last cycles kept young lived on: aging traced it twice for little. (The
    // first time, only on the second such sample in a row: a program's long-lived
    // structures are young once too, when it starts.)
    if (aging_backoff_cycles_ == 0 && ++aging_strikes_ < kAgingStrikes) return;
    aging_strikes_ = 0;
    aging_backoff_cycles_ = aging_backoff_cycles_ == 0 ? kAgingMinBackoff : std::min(2 * aging_backoff_cycles_, kAgingMaxBackoff);
    aging_off_cycles_ = aging_backoff_cycles_;
  } else {
    aging_strikes_ = 0;
    aging_backoff_cycles_ = 0;
  }
}

}  // namespace shoal::internal
