#include "model/model.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <sstream>

namespace kvindex {
namespace model {
namespace {

// Applies `step` to `m`; adds to `touched` (if given) every key whose value
// it may have changed.
void ApplyStep(const Step& step, Map* m,
               std::vector<std::string>* touched = nullptr) {
  if (step.clear()) {
    if (touched != nullptr) {
      for (const auto& [key, value] : *m) touched->push_back(key);
    }
    m->clear();
  }
  for (const auto& [key, value] : step.changes) {
    if (touched != nullptr) touched->push_back(key);
    if (value) {
      (*m)[key] = *value;
    } else {
      m->erase(key);
    }
  }
}

std::optional<std::string> Get(const Map& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

// Whether `a` and `b` bind `key` alike (both to one value, or neither).
bool SameValue(const Map& a, const Map& b, const std::string& key) {
  const auto x = a.find(key);
  const auto y = b.find(key);
  if (x == a.end() || y == b.end()) return x == a.end() && y == b.end();
  return x->second == y->second;
}

std::string ShowValue(const std::optional<std::string>& v) {
  return v ? Quote(*v) : "absent";
}

// Whether `visits` are exactly the bindings of `shown`, each once: the common
// case, checked with one allocation rather than one per binding.
bool VisitsMatch(const Map& shown, const Visits& visits) {
  if (visits.size() != shown.size()) return false;
  // The bindings visited: as many as there are, and all distinct.
  std::vector<const std::string*> visited;
  visited.reserve(visits.size());
  for (const auto& [k, v] : visits) {
    auto it = shown.find(k);
    if (it == shown.end() || it->second != v) return false;
    visited.push_back(&it->first);
  }
  std::sort(visited.begin(), visited.end(), std::less<const std::string*>());
  return std::adjacent_find(visited.begin(), visited.end()) == visited.end();
}

}  // namespace

std::string Step::Label() const {
  switch (kind) {
    case Kind::kReplace:
      return "replace " + Quote(changes[0].first) + "=" +
             Quote(*changes[0].second) + (overcommit ? " (overcommit)" : "");
    case Kind::kFilter: {
      std::string label = "filter, removing";
      for (size_t i = 0; i < changes.size() && i < kMaxShown; ++i) {
        label += " " + Quote(changes[i].first);
      }
      if (changes.size() > kMaxShown) {
        label += " ... " + std::to_string(changes.size() - kMaxShown) + " more";
      }
      return label;
    }
    case Kind::kClear:
      return "clear";
  }
  return "";
}

std::string Quote(const std::string& bytes) {
  std::string out = "\"";
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

std::string ShowMap(const Map& m) {
  std::string out = "{";
  size_t shown = 0;
  for (const auto& [k, v] : m) {
    if (shown == kMaxShown) {
      out += ", ... " + std::to_string(m.size() - shown) + " more";
      break;
    }
    if (shown++ > 0) out += ", ";
    out += Quote(k) + ": " + Quote(v);
  }
  return out + "}";
}

std::string ShowDifferences(const Map& shown, const Map& expected) {
  std::set<std::string> keys;
  for (const auto& [k, v] : shown) keys.insert(k);
  for (const auto& [k, v] : expected) keys.insert(k);
  std::ostringstream os;
  size_t differ = 0;
  for (const auto& k : keys) {
    const std::optional<std::string> got = Get(shown, k);
    const std::optional<std::string> want = Get(expected, k);
    if (got == want) continue;
    if (differ++ < kMaxShown) {
      os << "  key " << Quote(k) << ": shows " << ShowValue(got)
         << ", expected " << ShowValue(want) << "\n";
    }
  }
  if (differ > kMaxShown) {
    os << "  ... " << differ - kMaxShown << " more keys differ\n";
  }
  return os.str();
}

void IndexModel::Append(Step step, Outcome outcome) {
  ApplyStep(step, &current_);
  steps_.push_back(std::move(step));
  if (outcome == Outcome::kFailed) {
    maybe_flushed_ = end();
    merge_may_run_ = true;
  }
}

void IndexModel::Replace(const std::string& key, const std::string& value,
                         bool overcommit, Outcome outcome) {
  Step step;
  step.kind = Step::Kind::kReplace;
  step.overcommit = overcommit;
  step.changes.emplace_back(key, value);
  Append(std::move(step), outcome);
  if (!overcommit) merge_may_run_ = true;
  if (merge_may_run_) maybe_flushed_ = end();
}

void IndexModel::CollectValues() const {
  for (; collected_ < steps_.size(); ++collected_) {
    const Step& step = steps_[collected_];
    if (step.clear()) since_clear_.clear();
    for (const auto& [key, value] : step.changes) {
      if (!value) continue;
      since_clear_[key].insert(*value);
      ever_[key].insert(*value);
    }
  }
}

std::optional<std::string> IndexModel::Find(const std::string& key) const {
  return Get(current_, key);
}

void IndexModel::Filter(const KeepFn& keep, Outcome outcome) {
  Step step;
  step.kind = Step::Kind::kFilter;
  for (const auto& [key, value] : current_) {
    if (keep(key, value)) continue;
    step.changes.emplace_back(key, std::nullopt);
  }
  const size_t start = end();
  Append(std::move(step), outcome);
  if (outcome == Outcome::kFailed) return;
  durable_ = std::max(durable_, start);
  flushed_ = maybe_flushed_ = end();
  merge_may_run_ = false;
}

void IndexModel::Clear(Outcome outcome) {
  Step step;
  step.kind = Step::Kind::kClear;
  if (merge_may_run_) merge_may_have_aborted_ = true;
  Append(std::move(step), outcome);
  if (outcome == Outcome::kFailed) return;
  durable_ = flushed_ = maybe_flushed_ = end();
  merge_may_run_ = false;
}

void IndexModel::Flush(bool fsync, Outcome outcome) {
  maybe_flushed_ = end();
  if (outcome == Outcome::kFailed) {
    merge_may_run_ = true;
    return;
  }
  flushed_ = end();
  if (fsync) durable_ = end();
}

void IndexModel::Merge(Outcome outcome) {
  maybe_flushed_ = end();
  merge_may_run_ = true;
  if (outcome == Outcome::kFailed) return;
  // An empty index starts no merge: AwaitMerge still reports the previous one.
  if (!current_.empty()) merge_may_have_aborted_ = false;
  durable_ = flushed_ = end();
}

void IndexModel::TryMerge(Outcome /*outcome*/) {
  maybe_flushed_ = end();
  merge_may_run_ = true;
}

void IndexModel::Reopen() {
  writer_open_ = true;
  handles_ = {0};
}

void IndexModel::OpenHandle(int id) {
  if (!writer_open_) {
    writer_open_ = true;
    handles_.clear();
  }
  handles_.insert(id);
}

void IndexModel::CloseHandle(int id, bool immediately, Outcome outcome) {
  handles_.erase(id);
  if (handles_.empty()) return Close(outcome);
  // Another handle keeps the instance open: the close only waits for the
  // running merge, cancelled first if `immediately`.
  if (immediately && merge_may_run_) merge_may_have_aborted_ = true;
  if (outcome == Outcome::kOk) merge_may_run_ = false;
}

std::vector<int> IndexModel::HandleIds() const {
  return std::vector<int>(handles_.begin(), handles_.end());
}

void IndexModel::Close(Outcome outcome) {
  writer_open_ = false;
  handles_.clear();
  maybe_flushed_ = end();
  if (merge_may_run_) merge_may_have_aborted_ = true;
  if (outcome == Outcome::kFailed) return;
  durable_ = flushed_ = end();
  merge_may_run_ = false;
}

Map IndexModel::StateAt(size_t p) const {
  Map m = base_;
  for (size_t i = 0; i < p && i < steps_.size(); ++i) ApplyStep(steps_[i], &m);
  return m;
}

std::vector<size_t> IndexModel::Matching(const Map& m, size_t lo,
                                         size_t hi) const {
  std::vector<size_t> out;
  Map state = StateAt(lo);
  // The keys on which state(p) and m disagree, kept up to date change by
  // change: state(p) == m exactly when there is none.
  std::set<std::string> differ;
  const auto update = [&](const std::string& key) {
    if (SameValue(state, m, key)) {
      differ.erase(key);
    } else {
      differ.insert(key);
    }
  };
  for (const auto& [k, v] : state) update(k);
  for (const auto& [k, v] : m) update(k);
  std::vector<std::string> touched;
  for (size_t p = lo; p <= hi && p <= end(); ++p) {
    if (p > lo) {
      touched.clear();
      ApplyStep(steps_[p - 1], &state, &touched);
      for (const auto& key : touched) update(key);
    }
    if (differ.empty()) out.push_back(p);
  }
  return out;
}

std::string IndexModel::DescribeSteps(size_t lo, size_t hi) const {
  const size_t last = std::min(hi, end());
  const size_t count = last > lo ? last - lo : 0;
  std::ostringstream os;
  for (size_t p = lo + 1; p <= last; ++p) {
    // The first and the last kMaxShown / 2 steps.
    if (count > kMaxShown && p == lo + kMaxShown / 2 + 1) {
      os << "    ... " << count - kMaxShown << " more steps\n";
      p = last - kMaxShown / 2;
    }
    os << "    step " << p << ": " << steps_[p - 1].Label() << "\n";
  }
  return os.str();
}

std::string IndexModel::ExplainRange(const Map& observed, size_t lo, size_t hi,
                                     bool prefix) const {
  // state(p) itself obeys both rules: no explanation to build. Matching is
  // much cheaper than the per-key analysis below.
  if (!Matching(observed, lo, hi).empty()) return "";
  // Per key: every value (or absence) it has in state(p), p in [lo, hi], with
  // the first position where it has it. A key's value changes only where a
  // step touches it.
  Map state = StateAt(lo);
  std::map<std::string, std::map<std::optional<std::string>, size_t>> allowed;
  for (const auto& [k, v] : observed) allowed[k].emplace(Get(state, k), lo);
  for (const auto& [k, v] : state) allowed[k].emplace(v, lo);
  std::vector<std::string> touched;
  for (size_t p = lo + 1; p <= hi && p <= end(); ++p) {
    touched.clear();
    ApplyStep(steps_[p - 1], &state, &touched);
    for (const auto& k : touched) {
      auto& values = allowed[k];
      // Not in state(lo) and not touched before: absent until now.
      if (values.empty()) values.emplace(std::nullopt, lo);
      values.emplace(Get(state, k), p);
    }
  }
  std::ostringstream os;
  size_t violations = 0;
  for (const auto& [key, values] : allowed) {
    const std::optional<std::string> got = Get(observed, key);
    if (values.count(got)) continue;
    if (violations++ >= kMaxShown) continue;
    os << "  key " << Quote(key) << " shows " << ShowValue(got) << "; allowed:";
    for (const auto& [v, p] : values) os << " " << ShowValue(v) << "@" << p;
    os << "\n";
  }
  if (violations > kMaxShown) {
    os << "  ... " << violations - kMaxShown << " more keys\n";
  }
  if (violations > 0) {
    return "per-key rule violated for positions [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "] (value@first position):\n" + os.str() +
           "  shown: " + ShowMap(observed) + "\n  state(" + std::to_string(lo) +
           "): " + ShowMap(StateAt(lo)) + "\n  steps after it:\n" +
           DescribeSteps(lo, hi);
  }
  if (prefix) {
    return "prefix rule violated: " + ShowMap(observed) +
           " is state(p) for no p in [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]\n  state(" + std::to_string(lo) +
           "): " + ShowMap(StateAt(lo)) + "\n  steps after it:\n" +
           DescribeSteps(lo, hi);
  }
  return "";
}

std::vector<int> IndexModel::ReadOnlyIds() const {
  std::vector<int> ids;
  for (const auto& [id, range] : readers_) ids.push_back(id);
  return ids;
}

void IndexModel::Crash() {
  CollectValues();  // the values bound stay in since_clear_ and ever_
  base_ = StateAt(durable_);
  current_ = base_;
  steps_.clear();
  collected_ = 0;
  durable_ = flushed_ = maybe_flushed_ = 0;
  merge_may_run_ = false;
  merge_may_have_aborted_ = false;
  writer_open_ = true;
  handles_ = {0};
  readers_.clear();
}

std::string CheckIterVisits(const Map& shown, const Visits& visits) {
  if (VisitsMatch(shown, visits)) return "";
  std::map<std::string, std::vector<std::string>> by_key;
  for (const auto& [k, v] : visits) by_key[k].push_back(v);
  std::ostringstream os;
  size_t wrong = 0;
  const auto report = [&](const std::string& line) {
    if (wrong++ < kMaxShown) os << "  " << line << "\n";
  };
  for (const auto& [k, v] : shown) {
    if (!by_key.count(k)) {
      report("binding " + Quote(k) + ": " + Quote(v) + " not visited");
    }
  }
  for (const auto& [k, vs] : by_key) {
    auto it = shown.find(k);
    if (it == shown.end()) {
      report("key " + Quote(k) + " visited (with " + Quote(vs[0]) +
             ") but has no binding");
      continue;
    }
    if (vs.size() > 1) {
      std::string values;
      for (const auto& v : vs) values += " " + Quote(v);
      report("key " + Quote(k) + " visited " + std::to_string(vs.size()) +
             " times, with" + values);
    }
    for (const auto& v : vs) {
      if (v != it->second) {
        report("key " + Quote(k) + " visited with " + Quote(v) +
               ", its value is " + Quote(it->second));
      }
    }
  }
  if (wrong == 0) return "";
  if (wrong > kMaxShown) {
    os << "  ... " << wrong - kMaxShown << " more\n";
  }
  std::string all;
  for (size_t i = 0; i < visits.size() && i < kMaxShown; ++i) {
    all += " " + Quote(visits[i].first) + ":" + Quote(visits[i].second);
  }
  if (visits.size() > kMaxShown) {
    all += " ... " + std::to_string(visits.size() - kMaxShown) + " more";
  }
  return "iter visits wrong:\n" + os.str() + "  shown: " + ShowMap(shown) +
         "\n  visits in order:" + all;
}

std::string CheckIterVisits(const Map& shown, const Visits& visits,
                            const ValueSets& /*older*/) {
  return CheckIterVisits(shown, visits);
}

}  // namespace model
}  // namespace kvindex
