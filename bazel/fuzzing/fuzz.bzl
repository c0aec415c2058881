"""cc_fuzz_target: one libFuzzer target = a cc_binary plus a corpus regression cc_test.

  bazel build --config=fuzz //pkg:name      -> libFuzzer binary (clang, -fsanitize=fuzzer)
  bazel build //pkg:name                    -> same sources + replay main (any compiler)
  bazel test //pkg:name_regression_test     -> replays every corpus file (any config)
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_test")

def cc_fuzz_target(name, srcs, deps = [], corpus = [], copts = [], shard_count = None, **kwargs):
    """Declares <name> (fuzzer binary) and <name>_regression_test (corpus replay).

    Args:
      name: name of the cc_binary; the test is <name>_regression_test.
      srcs: sources defining LLVMFuzzerTestOneInput.
      deps: cc_library dependencies.
      corpus: input files replayed by the regression test.
      copts: extra compiler options for both targets.
      shard_count: shards of the regression test (each replays every n-th
        input), for corpora slow to replay under the sanitizers.
      **kwargs: passed to both the cc_binary and the cc_test (tags, visibility...).
    """
    replay = str(Label("//bazel/fuzzing:replay_main"))
    fuzzing = str(Label("//bazel/fuzzing:fuzzing"))
    asan_defaults = str(Label("//bazel/fuzzing:asan_defaults"))
    cc_binary(
        name = name,
        srcs = srcs,
        copts = copts,
        deps = deps + select({
            fuzzing: [asan_defaults],
            "//conditions:default": [replay],
        }),
        linkopts = select({
            fuzzing: ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        **kwargs
    )
    native.filegroup(
        name = name + "_corpus",
        srcs = corpus,
    )
    cc_test(
        name = name + "_regression_test",
        srcs = srcs,
        copts = copts,
        deps = deps + [replay],
        data = [":" + name + "_corpus"],
        args = ["$(rootpaths :%s_corpus)" % name] if corpus else [],
        shard_count = shard_count,
        **kwargs
    )
