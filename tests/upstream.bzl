"""The upstream port's tests, run in both layouts."""

load("@rules_cc//cc:defs.bzl", "cc_test")

def upstream_test(name, **kwargs):
    """Two cc_tests from the same sources: `name`, on stores in the default layout, and `name` with "_test" replaced by "_tiered_test", on tiered stores (tests/upstream_fixture.h, UpstreamLayout).

    Args:
      name: the default layout's target, ending in "_test".
      **kwargs: the cc_test attributes of both.
    """
    cc_test(name = name, **kwargs)
    cc_test(
        name = name[:-len("_test")] + "_tiered_test",
        env = {"KVINDEX_UPSTREAM_LAYOUT": "tiered"},
        **kwargs
    )
