// SPDX-License-Identifier: Apache-2.0
// The configuration file: every kind of error names file, key and expectation.
#include <gtest/gtest.h>

#include <turtlefinder/options.hpp>

#include <unistd.h>

#include <fstream>

namespace {

namespace tf = turtlefinder;

class Config : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/tf-config-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/turtlefinder.json";
    }
    void TearDown() override {
        ::unlink(path_.c_str());
        ::rmdir(dir_.c_str());
    }
    void write(const std::string &text) { std::ofstream(path_) << text; }
    // The error message load_config gives for `text` ("" when it succeeds).
    std::string error_for(const std::string &text) {
        write(text);
        tf::Options o;
        try {
            tf::load_config(path_, o);
        } catch (const std::runtime_error &e) {
            return e.what();
        }
        return "";
    }
    std::string dir_, path_;
};

TEST_F(Config, ReadsEveryKey) {
    write(R"({"plugin_dirs": ["/a", "/b"], "disabled_plugins": ["crio"], "online_wait_ms": 1500,
              "probe_timeout_ms": 300, "relist_interval_ms": 250, "health_interval_ms": 700, "log_level": "debug", "procfs_root": "/host/proc",
              "plugin_settings": {"moby": {"k": "v"}, "containerd": {"skip-namespaces": "moby,x"}}})");
    tf::Options o;
    auto file = tf::load_config(path_, o);
    EXPECT_EQ(o.plugin_dirs, (std::vector<std::string>{"/a", "/b"}));
    EXPECT_EQ(o.disabled_plugins, (std::set<std::string>{"crio"}));
    EXPECT_EQ(o.online_wait.count(), 1500);
    EXPECT_EQ(o.probe_timeout.count(), 300);
    EXPECT_EQ(o.relist_interval.count(), 250);
    EXPECT_EQ(o.health_interval.count(), 700);
    EXPECT_EQ(o.plugin_settings["containerd"]["skip-namespaces"], "moby,x");
    EXPECT_EQ(o.plugin_settings["moby"]["k"], "v");
    EXPECT_EQ(file.log_level, "debug");
    EXPECT_EQ(o.procfs_root, "/host/proc");
}

TEST_F(Config, TheShippedDefaultFileIsValid) {
    const char *src = std::getenv("TF_SOURCE_ROOT");
    ASSERT_NE(src, nullptr) << "TF_SOURCE_ROOT not set by meson";
    tf::Options o;
    EXPECT_NO_THROW(tf::load_config(std::string(src) + "/config/turtlefinder.json", o));
    EXPECT_EQ(o.online_wait.count(), 2000);
    EXPECT_EQ(o.health_interval.count(), 5000);
}

// "workers" no longer means anything: an old file that sets it still loads
// (a wrong value is still an error).
TEST_F(Config, ObsoleteWorkersIsReadAndIgnored) {
    write(R"({"workers": 4, "online_wait_ms": 100})");
    tf::Options o;
    EXPECT_NO_THROW(tf::load_config(path_, o));
    EXPECT_EQ(o.online_wait.count(), 100);
    EXPECT_NE(error_for(R"({"workers": 0})").find("got 0"), std::string::npos);
}

TEST_F(Config, UnknownKeyIsNamed) {
    auto e = error_for(R"({"workerz": 3})");
    EXPECT_NE(e.find(path_), std::string::npos) << e;
    EXPECT_NE(e.find("\"workerz\""), std::string::npos) << e;
    EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
}

// Engine-specific settings go through plugin_settings: the core names no engine.
TEST_F(Config, EngineSpecificKeysAreNotTopLevel) {
    auto e = error_for(R"({"containerd_skip_namespaces": ["moby"]})");
    EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
}

TEST_F(Config, WrongTypeSaysWhatWasExpected) {
    auto e = error_for(R"({"health_interval_ms": "four"})");
    EXPECT_NE(e.find("\"health_interval_ms\""), std::string::npos) << e;
    EXPECT_NE(e.find("expected an integer from 10 to 3600000"), std::string::npos) << e;
    e = error_for(R"({"plugin_dirs": "/one"})");
    EXPECT_NE(e.find("expected an array of strings"), std::string::npos) << e;
    e = error_for(R"({"plugin_settings": {"moby": {"k": 1}}})");
    EXPECT_NE(e.find("plugin_settings.moby.k"), std::string::npos) << e;
}

TEST_F(Config, BadValuesAreRefused) {
    EXPECT_NE(error_for(R"({"workers": 0})").find("got 0"), std::string::npos);
    EXPECT_NE(error_for(R"({"online_wait_ms": -5})").find("\"online_wait_ms\""), std::string::npos);
    EXPECT_NE(error_for(R"({"log_level": "loud"})").find("expected one of"), std::string::npos);
    EXPECT_NE(error_for(R"({"procfs_root": "host/proc"})").find("\"procfs_root\": expected an absolute path"),
              std::string::npos);
}

TEST_F(Config, ErrorsSayWhereAndWhy) {
    EXPECT_EQ(error_for("{\"workers\": 2,\n \"x\" 1}"), path_ + ":2:6: not valid JSON: syntax error");
    EXPECT_EQ(error_for("{\"workers\": 2"), path_ + ":1:14: not valid JSON: incomplete JSON");
    EXPECT_EQ(error_for(R"({"plugin_settings": {"moby": {"a": "1", "a": "2"}}})"),
              path_ + ":1:43: duplicate key \"a\"");
    tf::Options o;
    try {
        tf::load_config(dir_, o);
        ADD_FAILURE() << "a directory was read as a configuration file";
    } catch (const std::runtime_error &e) {
        EXPECT_EQ(std::string(e.what()), dir_ + ": cannot read the configuration file: Is a directory");
    }
    try {
        tf::load_config(dir_ + "/missing.json", o);
        ADD_FAILURE() << "a missing file was read";
    } catch (const std::runtime_error &e) {
        EXPECT_EQ(std::string(e.what()),
                  dir_ + "/missing.json: cannot read the configuration file: No such file or directory");
    }
}

TEST_F(Config, BrokenFilesAreErrorsAndChangeNothing) {
    EXPECT_NE(error_for("{not json").find("not valid JSON"), std::string::npos);
    EXPECT_NE(error_for("[1, 2]").find("expected a JSON object"), std::string::npos);
    write(R"({"health_interval_ms": 9000, "bogus": true})");
    tf::Options o;
    EXPECT_THROW(tf::load_config(path_, o), std::runtime_error);
    EXPECT_EQ(o.health_interval, tf::Options{}.health_interval) << "a bad file must not half-apply";
    EXPECT_THROW(tf::load_config(dir_ + "/missing.json", o), std::runtime_error);
}

} // namespace
