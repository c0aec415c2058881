"""cc_fuzz_target: one libFuzzer target = a cc_binary plus a corpus regression cc_test.

  bazel build --config=fuzz //pkg:name      -> libFuzzer binary (clang, -fsanitize=fuzzer)
  bazel build //pkg:name                    -> same sources + replay main (any compiler)
  bazel test //pkg:name_regression_test     -> replays every corpus file (any config)
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_test")

_NO_CMP_TRACING = "-fno-sanitize-coverage=trace-cmp"

def _without_cmp_tracing_impl(settings, attr):
    copts = settings["//command_line_option:copt"]

    # (Bazel 4 cannot hand --define to a transition: the sanitizer flag of
    # --config=fuzz tells that build apart.)
    instrumented = [c for c in copts if c.startswith("-fsanitize=") and "fuzzer" in c]
    if not instrumented:
        return {"//command_line_option:copt": copts}
    return {"//command_line_option:copt": copts + [_NO_CMP_TRACING]}

# Under --config=fuzz: the whole build of a target without comparison tracing
# (libFuzzer's hooks on every integer compare of the code under test). A no-op
# otherwise.
_without_cmp_tracing = transition(
    implementation = _without_cmp_tracing_impl,
    inputs = ["//command_line_option:copt"],
    outputs = ["//command_line_option:copt"],
)

def _fuzz_binary_without_cmp_tracing_impl(ctx):
    binary = ctx.attr.binary[0]
    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(
        output = out,
        target_file = binary[DefaultInfo].files_to_run.executable,
        is_executable = True,
    )
    return [DefaultInfo(
        executable = out,
        runfiles = binary[DefaultInfo].default_runfiles,
    )]

# The binary of `binary`, built without comparison tracing under --config=fuzz,
# under this rule's name.
_fuzz_binary_without_cmp_tracing = rule(
    implementation = _fuzz_binary_without_cmp_tracing_impl,
    attrs = {
        "binary": attr.label(
            cfg = _without_cmp_tracing,
            executable = True,
            mandatory = True,
        ),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
    executable = True,
)

def cc_fuzz_target(
        name,
        srcs,
        deps = [],
        corpus = [],
        copts = [],
        shard_count = None,
        cmp_tracing = True,
        **kwargs):
    """Declares <name> (fuzzer binary) and <name>_regression_test (corpus replay).

    Args:
      name: name of the fuzzer binary; the test is <name>_regression_test.
      srcs: sources defining LLVMFuzzerTestOneInput.
      deps: cc_library dependencies.
      corpus: input files replayed by the regression test.
      copts: extra compiler options for both targets.
      shard_count: shards of the regression test (each replays every n-th
        input), for corpora slow to replay under the sanitizers.
      cmp_tracing: False builds the fuzzer and everything it links without
        comparison tracing under --config=fuzz (a second build of the library).
        For targets whose input is a sequence of operations rather than bytes
        the code compares: there the hooks only cost time (12-24% of the CPU
        of a corpus replay, fuzz/HISTORY.md).
      **kwargs: passed to both the binary and the cc_test (tags, visibility...).
    """
    replay = str(Label("//bazel/fuzzing:replay_main"))
    fuzzing = str(Label("//bazel/fuzzing:fuzzing"))
    asan_defaults = str(Label("//bazel/fuzzing:asan_defaults"))
    binary_kwargs = dict(kwargs)
    binary_name = name
    if not cmp_tracing:
        binary_name = name + "_binary"
        _fuzz_binary_without_cmp_tracing(
            name = name,
            binary = ":" + binary_name,
            **kwargs
        )

        # Built only through the rule above (else --config=fuzz builds it twice).
        binary_kwargs["tags"] = kwargs.get("tags", []) + ["manual"]
    cc_binary(
        name = binary_name,
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
        **binary_kwargs
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
