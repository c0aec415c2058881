#include "model/model.h"

#include <optional>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(IndexModel, ReplaceFindMemLastWriteWins) {
  IndexModel m;
  EXPECT_EQ(m.Find("k"), std::nullopt);
  EXPECT_FALSE(m.Mem("k"));
  m.Replace("k", "v1");
  m.Replace("k", "v2");
  m.Replace("j", "w");
  EXPECT_EQ(m.Find("k"), "v2");
  EXPECT_TRUE(m.Mem("j"));
  EXPECT_EQ(m.Bindings(), (Map{{"j", "w"}, {"k", "v2"}}));
  EXPECT_EQ(m.end(), 3u);
  EXPECT_EQ(m.StateAt(1), (Map{{"k", "v1"}}));
  EXPECT_EQ(m.StateAt(0), Map{});
}

TEST(IndexModel, FilterLooksAtNewestBindingOnly) {
  IndexModel m;
  m.Replace("a", "keep");
  m.Replace("a", "drop");  // newest binding of a fails the predicate
  m.Replace("b", "drop");
  m.Replace("b", "keep");  // newest binding of b passes
  m.Filter(
      [](const std::string&, const std::string& v) { return v == "keep"; });
  EXPECT_EQ(m.Bindings(), (Map{{"b", "keep"}}));
  // Filter: durable up to its start, flushed to its end.
  EXPECT_EQ(m.durable(), 4u);
  EXPECT_EQ(m.flushed(), 5u);
  EXPECT_EQ(m.maybe_flushed(), 5u);
  EXPECT_FALSE(m.merge_may_run());
}

TEST(IndexModel, FlushAndFsyncMovePositions) {
  IndexModel m;
  m.Replace("a", "1", /*overcommit=*/true);
  EXPECT_EQ(m.maybe_flushed(),
            0u);  // overcommit, no merge: nothing may be flushed
  m.Flush(/*fsync=*/false);
  EXPECT_EQ(m.flushed(), 1u);
  EXPECT_EQ(m.durable(), 0u);
  m.Replace("b", "2", /*overcommit=*/true);
  m.Flush(/*fsync=*/true);
  EXPECT_EQ(m.durable(), 2u);
  EXPECT_EQ(m.flushed(), 2u);
}

TEST(IndexModel, ReplaceThatMayMergeMayFlush) {
  IndexModel m;
  m.Replace("a", "1");  // may start a merge, which flushes the log
  EXPECT_EQ(m.flushed(), 0u);
  EXPECT_EQ(m.maybe_flushed(), 1u);
  EXPECT_TRUE(m.merge_may_run());
  // While a merge may run, even an overcommitted write may get flushed by its
  // end.
  m.Replace("b", "2", /*overcommit=*/true);
  EXPECT_EQ(m.maybe_flushed(), 2u);
  m.AwaitMerge();
  m.Replace("c", "3", /*overcommit=*/true);
  EXPECT_EQ(m.maybe_flushed(), 2u);
}

TEST(IndexModel, MergeMakesEverythingBeforeItDurable) {
  IndexModel m;
  m.Replace("a", "1", true);
  m.Merge();
  EXPECT_EQ(m.durable(), 1u);
  EXPECT_EQ(m.flushed(), 1u);
  m.TryMerge();
  EXPECT_EQ(m.durable(), 1u);
  EXPECT_TRUE(m.merge_may_run());
}

TEST(IndexModel, ClearIsDurableAndMayAbortAMerge) {
  IndexModel m;
  m.Replace("a", "1");
  EXPECT_FALSE(m.merge_may_have_aborted());
  m.Clear();
  EXPECT_TRUE(m.Bindings().empty());
  EXPECT_EQ(m.durable(), 2u);
  EXPECT_TRUE(m.merge_may_have_aborted());
  EXPECT_FALSE(m.merge_may_run());
  m.Merge();  // empty: starts nothing, the abort may still be reported
  EXPECT_TRUE(m.merge_may_have_aborted());
  m.Replace("b", "1");
  m.Merge();
  EXPECT_FALSE(m.merge_may_have_aborted());
}

TEST(IndexModel, CloseMakesEverythingDurable) {
  IndexModel m;
  m.Replace("a", "1", true);
  m.Close();
  EXPECT_FALSE(m.writer_open());
  EXPECT_EQ(m.durable(), 1u);
  m.Reopen();
  EXPECT_TRUE(m.writer_open());
  EXPECT_EQ(m.Find("a"), "1");
}

TEST(IndexModel, ClosingOneOfSeveralHandlesFlushesNothing) {
  IndexModel m;
  EXPECT_THAT(m.HandleIds(), ElementsAre(0));
  m.OpenHandle(1);
  m.Replace("a", "1", true);
  m.CloseHandle(0, /*immediately=*/false);
  EXPECT_TRUE(m.writer_open());
  EXPECT_THAT(m.HandleIds(), ElementsAre(1));
  EXPECT_EQ(m.durable(), 0u);
  EXPECT_EQ(m.maybe_flushed(), 0u);
  EXPECT_EQ(m.Find("a"), "1");
  m.OpenHandle(0);
  m.CloseHandle(1, /*immediately=*/false);
  m.CloseHandle(0, /*immediately=*/false);  // the last one
  EXPECT_FALSE(m.writer_open());
  EXPECT_EQ(m.durable(), 1u);
  m.OpenHandle(2);  // reopens
  EXPECT_TRUE(m.writer_open());
  EXPECT_THAT(m.HandleIds(), ElementsAre(2));
}

TEST(IndexModel, ClosingAHandleImmediatelyMayAbortTheMerge) {
  IndexModel m;
  m.OpenHandle(1);
  m.Replace("a", "1");  // may start a merge
  m.CloseHandle(1, /*immediately=*/false);
  EXPECT_FALSE(m.merge_may_run());  // it waited for the merge
  EXPECT_FALSE(m.merge_may_have_aborted());
  m.OpenHandle(1);
  m.Merge();
  m.CloseHandle(1, /*immediately=*/true);
  EXPECT_TRUE(m.merge_may_have_aborted());
  EXPECT_FALSE(m.merge_may_run());
  m.Crash();
  EXPECT_THAT(m.HandleIds(), ElementsAre(0));
}

TEST(IndexModel, FailedOperationPromisesNothing) {
  IndexModel m;
  m.Replace("a", "1", true);
  m.Flush(/*fsync=*/true, Outcome::kFailed);
  EXPECT_EQ(m.durable(), 0u);
  EXPECT_EQ(m.flushed(), 0u);
  EXPECT_EQ(m.maybe_flushed(), 1u);
  m.Clear(Outcome::kFailed);
  EXPECT_EQ(m.durable(), 0u);
  EXPECT_EQ(m.maybe_flushed(), 2u);
  // Both "cleared" and "not cleared" are allowed after a crash.
  EXPECT_EQ(m.CheckRecovered({}), "");
  EXPECT_EQ(m.CheckRecovered({{"a", "1"}}), "");
}

TEST(IndexModel, ReadOnlyInstanceRecordsFlushedRange) {
  IndexModel m;
  m.Replace("a", "1", true);
  m.Flush(false);
  m.OpenReadOnly(7);
  m.Replace("a", "2");  // may be flushed by a merge
  m.Sync(7);
  EXPECT_EQ(m.ReadOnlyRange(7), std::make_pair(size_t{1}, size_t{2}));
  EXPECT_THAT(m.ReadOnlyIds(), ElementsAre(7));
  EXPECT_EQ(m.ExplainRange({{"a", "1"}}, 1, 2, true), "");
  EXPECT_EQ(m.ExplainRange({{"a", "2"}}, 1, 2, true), "");
  EXPECT_THAT(m.ExplainRange({}, 1, 2, true),
              HasSubstr("key \"a\" shows absent"));
  EXPECT_THAT(m.Matching({{"a", "2"}}, 0, 2), ElementsAre(2));
  m.CloseReadOnly(7);
  EXPECT_FALSE(m.HasReadOnly(7));
}

TEST(IndexModel, ReadOnlyViewSurvivesClearUntilSync) {
  IndexModel m;
  m.Replace("a", "1", true);
  m.Flush(false);
  m.Sync(1);
  m.Clear();
  // The reader's range still designates the pre-clear state.
  const auto [lo, hi] = m.ReadOnlyRange(1);
  EXPECT_EQ(m.StateAt(lo), (Map{{"a", "1"}}));
  EXPECT_EQ(hi, 1u);
  m.Sync(1);
  EXPECT_EQ(m.StateAt(m.ReadOnlyRange(1).first), Map{});
}

TEST(IndexModel, CrashAllowsEveryPrefixBetweenDurableAndMaybeFlushed) {
  IndexModel m;
  m.Replace("a", "1", true);
  m.Replace("b", "1", true);
  m.Flush(/*fsync=*/true);  // D = 2
  m.Replace("a", "2", true);
  m.Replace("b", "2", true);
  m.Flush(/*fsync=*/false);   // F = H = 4
  m.Replace("a", "3", true);  // never flushed
  EXPECT_EQ(m.CheckRecovered({{"a", "1"}, {"b", "1"}}), "");
  EXPECT_EQ(m.CheckRecovered({{"a", "2"}, {"b", "1"}}), "");
  EXPECT_EQ(m.CheckRecovered({{"a", "2"}, {"b", "2"}}), "");
  // Lost durable binding.
  EXPECT_THAT(m.CheckRecovered({{"a", "1"}}),
              HasSubstr("key \"b\" shows absent; allowed: \"1\"@2 \"2\"@4"));
  // A value never flushed cannot survive.
  EXPECT_THAT(m.CheckRecovered({{"a", "3"}, {"b", "2"}}),
              HasSubstr("key \"a\" shows \"3\""));
  // A key never written cannot appear.
  EXPECT_THAT(m.CheckRecovered({{"a", "1"}, {"b", "1"}, {"x", "1"}}),
              HasSubstr("key \"x\" shows \"1\"; allowed: absent@2"));
  // Each key is fine alone, but b=2 was written after a=2: not a prefix.
  const std::string reordered = m.CheckRecovered({{"a", "1"}, {"b", "2"}});
  EXPECT_THAT(reordered, HasSubstr("prefix rule violated"));
  EXPECT_THAT(reordered, HasSubstr("step 3: replace \"a\"=\"2\""));
  EXPECT_EQ(m.CheckRecovered({{"a", "1"}, {"b", "2"}}, /*prefix=*/false), "");
}

TEST(IndexModel, CrashAllowsAbsenceOnlyIfRemovedOrNeverDurable) {
  IndexModel m;
  m.Replace("a", "1", true);
  m.Replace("b", "1", true);
  m.Close();  // D = 2
  m.Reopen();
  m.Filter([](const std::string& k, const std::string&) { return k != "a"; });
  // The filter's removal may be lost (D is its start), or kept.
  EXPECT_EQ(m.CheckRecovered({{"b", "1"}}), "");
  EXPECT_EQ(m.CheckRecovered({{"a", "1"}, {"b", "1"}}), "");
  EXPECT_THAT(m.CheckRecovered({{"a", "1"}}),
              HasSubstr("key \"b\" shows absent"));
}

TEST(IndexModel, KeyFirstWrittenAfterDurablePositionMayBeAbsent) {
  IndexModel m;
  m.Replace("a", "1", true);
  m.Replace("b", "1");  // may start a merge: H = 2, D = 0
  EXPECT_EQ(m.CheckRecovered({{"a", "1"}}), "");
  EXPECT_EQ(m.CheckRecovered({}), "");
  EXPECT_THAT(m.CheckRecovered({{"b", "2"}}),
              HasSubstr("key \"b\" shows \"2\"; allowed: absent@0 \"1\"@2"));
  // b=1 came after a=1.
  EXPECT_THAT(m.CheckRecovered({{"b", "1"}}), HasSubstr("prefix rule"));
}

TEST(IndexModel, LongHistoriesOverManyKeys) {
  IndexModel m;
  Map expected;
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "k" + std::to_string(i % 4000);
    const std::string value = std::to_string(i);
    m.Replace(key, value, /*overcommit=*/i % 7 != 0);
    if (i < 10000) expected[key] = value;
    if (i == 9999) m.Flush(/*fsync=*/true);
  }
  EXPECT_EQ(m.durable(), 10000u);
  EXPECT_EQ(m.CheckRecovered(expected), "");
  EXPECT_EQ(m.CheckRecovered(m.Bindings()), "");
  EXPECT_THAT(m.Matching(expected, 0, m.end()), ElementsAre(10000));
  Map torn = expected;
  torn["k3999"] = "19999";  // the last write, without the ones before it
  const std::string why = m.CheckRecovered(torn);
  EXPECT_THAT(why, HasSubstr("prefix rule violated"));
  EXPECT_THAT(why, HasSubstr("... 9960 more steps"));
  EXPECT_THAT(why, HasSubstr("step 20000: replace \"k3999\"=\"19999\""));
  EXPECT_LT(why.size(), 10000u);
}

TEST(IndexModel, CrashAdoptsDurableState) {
  IndexModel m;
  m.Replace("a", "1", true);
  m.Flush(true);
  m.Replace("a", "2", true);
  m.Replace("c", "3", true);
  m.Sync(0);
  m.Crash();
  EXPECT_EQ(m.Bindings(), (Map{{"a", "1"}}));
  EXPECT_EQ(m.end(), 0u);
  EXPECT_EQ(m.durable(), 0u);
  EXPECT_THAT(m.ReadOnlyIds(), IsEmpty());
  EXPECT_EQ(m.CheckRecovered({{"a", "1"}}), "");
  EXPECT_NE(m.CheckRecovered({{"a", "2"}}), "");
}

TEST(IndexModel, ValuesSinceClearForgetClearedValues) {
  IndexModel m;
  m.Replace("a", "1");
  m.Clear();
  m.Replace("a", "2");
  EXPECT_EQ(m.ValuesSinceClear().at("a"), (std::set<std::string>{"2"}));
  EXPECT_EQ(m.ValuesEver().at("a"), (std::set<std::string>{"1", "2"}));
}

TEST(IndexModel, ValuesAreKeptAcrossCrashesWheneverAskedFor) {
  IndexModel m;
  m.Replace("a", "1");
  EXPECT_EQ(m.ValuesEver().at("a"), (std::set<std::string>{"1"}));
  m.Replace("a", "2");
  m.Crash();
  m.Replace("a", "3");
  m.Replace("b", "4");
  EXPECT_EQ(m.ValuesSinceClear().at("a"),
            (std::set<std::string>{"1", "2", "3"}));
  m.Clear();
  m.Replace("b", "5");
  EXPECT_EQ(m.ValuesSinceClear().count("a"), 0u);
  EXPECT_EQ(m.ValuesSinceClear().at("b"), (std::set<std::string>{"5"}));
  EXPECT_EQ(m.ValuesEver().at("a"), (std::set<std::string>{"1", "2", "3"}));
  EXPECT_EQ(m.ValuesEver().at("b"), (std::set<std::string>{"4", "5"}));
}

TEST(IndexModel, DescribeStepsLabelsEachKind) {
  IndexModel m;
  m.Replace("a", "1");
  m.Replace("b", "\x01", true);
  m.Filter([](const std::string& k, const std::string&) { return k != "a"; });
  m.Clear();
  EXPECT_EQ(m.DescribeSteps(0, 4),
            "    step 1: replace \"a\"=\"1\"\n"
            "    step 2: replace \"b\"=\"\\x01\" (overcommit)\n"
            "    step 3: filter, removing \"a\"\n"
            "    step 4: clear\n");
  EXPECT_EQ(m.DescribeSteps(1, 2),
            "    step 2: replace \"b\"=\"\\x01\" (overcommit)\n");
}

TEST(IndexModel, FilterLabelShowsAtMostSomeKeys) {
  IndexModel m;
  for (size_t i = 0; i < kMaxShown + 3; ++i) {
    m.Replace("k" + std::to_string(100 + i), "v", true);
  }
  m.Filter([](const std::string&, const std::string&) { return false; });
  const std::string steps = m.DescribeSteps(m.end() - 1, m.end());
  EXPECT_THAT(steps, HasSubstr("filter, removing \"k100\" \"k101\""));
  EXPECT_THAT(steps, HasSubstr(" \"k139\" ... 3 more\n"));
  EXPECT_THAT(steps, Not(HasSubstr("k140")));
}

TEST(CheckIterVisits, AcceptsEachBindingOnceInAnyOrder) {
  const Map shown = {{"a", "2"}, {"b", "1"}};
  EXPECT_EQ(CheckIterVisits(shown, {{"b", "1"}, {"a", "2"}}), "");
  EXPECT_EQ(CheckIterVisits(shown, {{"a", "2"}, {"b", "1"}}), "");
  EXPECT_EQ(CheckIterVisits({}, {}), "");
}

TEST(CheckIterVisits, RejectsMissingExtraStaleAndRepeatedVisits) {
  const Map shown = {{"a", "2"}, {"b", "1"}};
  EXPECT_THAT(CheckIterVisits(shown, {{"a", "2"}}),
              HasSubstr("binding \"b\": \"1\" not visited"));
  EXPECT_THAT(CheckIterVisits(shown, {{"a", "2"}, {"b", "1"}, {"c", "1"}}),
              HasSubstr("key \"c\" visited (with \"1\") but has no binding"));
  EXPECT_THAT(CheckIterVisits(shown, {{"a", "1"}, {"b", "1"}}),
              HasSubstr("key \"a\" visited with \"1\", its value is \"2\""));
  // A second visit is wrong whatever its value: the current one, an older one.
  EXPECT_THAT(CheckIterVisits(shown, {{"a", "2"}, {"b", "1"}, {"a", "2"}}),
              HasSubstr("key \"a\" visited 2 times, with \"2\" \"2\""));
  EXPECT_THAT(CheckIterVisits(shown, {{"a", "2"}, {"b", "1"}, {"a", "1"}}),
              HasSubstr("key \"a\" visited 2 times"));
  // The older values a caller passes change nothing.
  const ValueSets older = {{"a", {"1", "2"}}, {"b", {"1"}}};
  EXPECT_THAT(
      CheckIterVisits(shown, {{"a", "2"}, {"b", "1"}, {"a", "1"}}, older),
      HasSubstr("key \"a\" visited 2 times"));
}

TEST(CheckIterVisits, ListsAtMostSomeProblems) {
  Map shown;
  for (int i = 0; i < 100; ++i) shown["k" + std::to_string(i)] = "v";
  const std::string why = CheckIterVisits(shown, {});
  EXPECT_THAT(why, HasSubstr("... 60 more"));
  EXPECT_LT(why.size(), 4000u);
}

TEST(Quote, EscapesUnprintableBytes) {
  EXPECT_EQ(Quote(std::string("a\0\"\xff", 4)), "\"a\\x00\\x22\\xff\"");
  EXPECT_EQ(ShowMap({{"k", "v"}, {"l", "w"}}), "{\"k\": \"v\", \"l\": \"w\"}");
}

TEST(ShowMap, ShowsAtMostSomeBindings) {
  Map m;
  for (int i = 0; i < 50; ++i) m["k" + std::to_string(100 + i)] = "v";
  const std::string shown = ShowMap(m);
  EXPECT_THAT(shown, HasSubstr("\"k139\": \"v\", ... 10 more}"));
  EXPECT_THAT(shown, Not(HasSubstr("k140")));
}

TEST(ShowDifferences, ListsTheKeysThatDiffer) {
  EXPECT_EQ(ShowDifferences({{"a", "1"}}, {{"a", "1"}}), "");
  EXPECT_EQ(ShowDifferences({{"a", "1"}, {"b", "1"}}, {{"a", "2"}, {"c", "1"}}),
            "  key \"a\": shows \"1\", expected \"2\"\n"
            "  key \"b\": shows \"1\", expected absent\n"
            "  key \"c\": shows absent, expected \"1\"\n");
}

}  // namespace
}  // namespace model
}  // namespace kvindex
