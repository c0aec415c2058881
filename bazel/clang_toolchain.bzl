"""@local_config_clang: Bazel's own autoconfigured Unix C++ toolchain, generated
with clang instead of $CC/gcc, so that --config=clang/fuzz can switch compilers with
--crosstool_top without re-running (and invalidating) @local_config_cc."""

load("@bazel_tools//tools/cpp:cc_configure.bzl", "cc_autoconf_impl")

def _clang_configure_impl(rctx):
    clang = rctx.which(rctx.attr.clang)
    if clang == None:
        fail("%s not found; apt-get install -y clang-14 libclang-rt-14-dev" % rctx.attr.clang)
    tools = {"gcc": str(clang)}
    cov = rctx.which(rctx.attr.llvm_cov)
    if cov != None:
        tools["llvm-cov"] = str(cov)
    cc_autoconf_impl(rctx, overriden_tools = tools)

clang_configure = repository_rule(
    implementation = _clang_configure_impl,
    attrs = {
        "clang": attr.string(default = "clang-14"),
        "llvm_cov": attr.string(default = "llvm-cov-14"),
    },
    environ = ["PATH", "BAZEL_CXXOPTS", "BAZEL_LINKOPTS", "BAZEL_LINKLIBS"],
    configure = True,
    local = True,
)
