#include "model/model.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace kvindex {
namespace model {
namespace {

void ApplyStep(const Step& step, Map* m) {
  if (step.clear) m->clear();
  for (const auto& [key, value] : step.changes) {
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

std::string ShowValue(const std::optional<std::string>& v) {
  return v ? Quote(*v) : "absent";
}

}  // namespace

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
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ", ";
    out += Quote(k) + ": " + Quote(v);
  }
  return out + "}";
}

void IndexModel::Append(Step step, Outcome outcome) {
  ApplyStep(step, &current_);
  if (step.clear) since_clear_.clear();
  for (const auto& [key, value] : step.changes) {
    if (!value) continue;
    since_clear_[key].insert(*value);
    ever_[key].insert(*value);
  }
  steps_.push_back(std::move(step));
  if (outcome == Outcome::kFailed) {
    maybe_flushed_ = end();
    merge_may_run_ = true;
  }
}

void IndexModel::Replace(const std::string& key, const std::string& value,
                         bool overcommit, Outcome outcome) {
  Step step;
  step.changes.emplace_back(key, value);
  step.label = "replace " + Quote(key) + "=" + Quote(value) +
               (overcommit ? " (overcommit)" : "");
  Append(std::move(step), outcome);
  if (!overcommit) merge_may_run_ = true;
  if (merge_may_run_) maybe_flushed_ = end();
}

std::optional<std::string> IndexModel::Find(const std::string& key) const {
  return Get(current_, key);
}

void IndexModel::Filter(const KeepFn& keep, Outcome outcome) {
  Step step;
  step.label = "filter, removing";
  for (const auto& [key, value] : current_) {
    if (keep(key, value)) continue;
    step.changes.emplace_back(key, std::nullopt);
    step.label += " " + Quote(key);
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
  step.clear = true;
  step.label = "clear";
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

void IndexModel::Close(Outcome outcome) {
  writer_open_ = false;
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
  for (size_t p = lo; p <= hi && p <= end(); ++p) {
    if (p > lo) ApplyStep(steps_[p - 1], &state);
    if (state == m) out.push_back(p);
  }
  return out;
}

std::string IndexModel::DescribeSteps(size_t lo, size_t hi) const {
  std::ostringstream os;
  for (size_t p = lo + 1; p <= hi && p <= end(); ++p) {
    os << "    step " << p << ": " << steps_[p - 1].label << "\n";
  }
  return os.str();
}

std::string IndexModel::ExplainRange(const Map& observed, size_t lo, size_t hi,
                                     bool prefix) const {
  // Per key: every value (or absence) it has in state(p), p in [lo, hi], with
  // the first position where it has it.
  Map state = StateAt(lo);
  std::set<std::string> keys;
  for (const auto& [k, v] : observed) keys.insert(k);
  for (const auto& [k, v] : state) keys.insert(k);
  for (size_t p = lo + 1; p <= hi && p <= end(); ++p) {
    for (const auto& change : steps_[p - 1].changes) keys.insert(change.first);
  }
  std::map<std::string, std::map<std::optional<std::string>, size_t>> allowed;
  for (size_t p = lo; p <= hi && p <= end(); ++p) {
    if (p > lo) ApplyStep(steps_[p - 1], &state);
    for (const auto& k : keys) allowed[k].emplace(Get(state, k), p);
  }
  std::ostringstream os;
  for (const auto& [key, values] : allowed) {
    const std::optional<std::string> got = Get(observed, key);
    if (values.count(got)) continue;
    os << "  key " << Quote(key) << " shows " << ShowValue(got) << "; allowed:";
    for (const auto& [v, p] : values) os << " " << ShowValue(v) << "@" << p;
    os << "\n";
  }
  if (os.tellp() > 0) {
    return "per-key rule violated for positions [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "] (value@first position):\n" + os.str() +
           "  shown: " + ShowMap(observed) + "\n  state(" + std::to_string(lo) +
           "): " + ShowMap(StateAt(lo)) + "\n  steps after it:\n" +
           DescribeSteps(lo, hi);
  }
  if (prefix && Matching(observed, lo, hi).empty()) {
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
  base_ = StateAt(durable_);
  current_ = base_;
  steps_.clear();
  durable_ = flushed_ = maybe_flushed_ = 0;
  merge_may_run_ = false;
  merge_may_have_aborted_ = false;
  writer_open_ = true;
  readers_.clear();
}

std::string CheckIterVisits(const Map& shown, const Visits& visits,
                            const ValueSets& older) {
  std::map<std::string, std::vector<std::string>> by_key;
  for (const auto& [k, v] : visits) by_key[k].push_back(v);
  std::ostringstream os;
  for (const auto& [k, v] : shown) {
    if (!by_key.count(k)) {
      os << "  binding " << Quote(k) << ": " << Quote(v) << " not visited\n";
    }
  }
  for (const auto& [k, vs] : by_key) {
    auto it = shown.find(k);
    if (it == shown.end()) {
      os << "  key " << Quote(k) << " visited (with " << Quote(vs[0])
         << ") but has no binding\n";
      continue;
    }
    if (vs[0] != it->second) {
      os << "  key " << Quote(k) << " first visited with " << Quote(vs[0])
         << ", current value is " << Quote(it->second) << "\n";
    }
    if (vs.size() > 2) {
      os << "  key " << Quote(k) << " visited " << vs.size() << " times\n";
    }
    auto old = older.find(k);
    for (size_t i = 1; i < vs.size(); ++i) {
      if (vs[i] == it->second) continue;
      if (old != older.end() && old->second.count(vs[i])) continue;
      os << "  key " << Quote(k) << " visited again with " << Quote(vs[i])
         << ", never one of its values\n";
    }
  }
  if (os.tellp() == 0) return "";
  std::string all;
  for (const auto& [k, v] : visits) all += " " + Quote(k) + ":" + Quote(v);
  return "iter visits wrong:\n" + os.str() + "  shown: " + ShowMap(shown) +
         "\n  visits in order:" + all;
}

}  // namespace model
}  // namespace kvindex
