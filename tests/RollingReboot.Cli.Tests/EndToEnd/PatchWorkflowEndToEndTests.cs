using System.Text.Json.Nodes;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// Reboot after patching, as it really happens (issue 15 sections 1 and 2), the real CLI against the lab's profiles:
/// XenServer 8 after host.apply_updates (hosts disabled with mandatory guidance reboot_host, which XAPI refuses to
/// enable until they reboot) and XCP-ng 8.2 / 8.3 patched by Xen Orchestra (other_config.rpm_patch_installation_time).
/// </summary>
public sealed class PatchWorkflowEndToEndTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rollreboot-patch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<LabHarness> StartAsync(string file) =>
        LabHarness.StartAsync(ScenarioLoader.LoadFile(LabHarness.SharedScenario(file)), timeScale: 200);

    private static JsonObject HostOf(JsonObject audit, string name) =>
        audit["hosts"]!.AsArray().OfType<JsonObject>().Single(h => h["name"]!.ToString() == name);

    private static int Boots(JsonObject audit, string name) => HostOf(audit, name)["bootCount"]!.GetValue<int>();

    private static bool Enabled(JsonObject audit, string name) => HostOf(audit, name)["enabled"]!.GetValue<bool>();

    private static IEnumerable<JsonObject> Events(JsonObject audit, string type, string host) =>
        audit["events"]!.AsArray().OfType<JsonObject>().Where(e => e["type"]!.ToString() == type && e["host"]?.ToString() == host);

    private static void AssertPoolRestored(JsonObject before, JsonObject after)
    {
        Assert.Empty(after["violations"]!.AsArray());
        foreach (var key in new[] { "haEnabled", "haConfiguration", "haHeartbeatSrs", "haHostFailuresToTolerate", "haAllowOvercommit" })
        {
            Assert.Equal(before["pool"]![key]!.ToJsonString(), after["pool"]![key]!.ToJsonString());
        }

        Assert.Empty(after["pool"]!["otherConfig"]!.AsObject());
        Assert.Equal("Managed", after["cloudstack"]!["managedState"]!.ToString());
        Assert.All(after["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
    }

    private string Script(string name, string body)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return path;
    }

    [Fact]
    public async Task Xs8AfterApplyUpdates_PlanTakesThePatchedDisabledHosts_AndSaysWhyTheOthersStayOut()
    {
        await using var lab = await StartAsync("xs8-after-apply-updates.json");
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "XS8-C", "--format", "json");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");

        var plan = JsonNode.Parse(stdout)!.AsObject();
        var hosts = plan["hosts"]!.AsArray().OfType<JsonObject>().ToDictionary(h => h["name"]!.ToString());
        Assert.Equal("reboot", hosts["xs2"]["action"]!.ToString());
        Assert.Contains("pending guidance: reboot_host", hosts["xs2"]["reason"]!.ToString(), StringComparison.Ordinal);
        Assert.Contains("enabled after its reboot", hosts["xs2"]["reason"]!.ToString(), StringComparison.Ordinal);
        Assert.Equal("skip", hosts["xs5"]["action"]!.ToString());
        Assert.StartsWith("disabled until its pending guidance is applied", hosts["xs5"]["reason"]!.ToString(), StringComparison.Ordinal);
        Assert.Equal("skip", hosts["xs6"]["action"]!.ToString());
        Assert.StartsWith("disabled by operator, left alone", hosts["xs6"]["reason"]!.ToString(), StringComparison.Ordinal);
        var warning = plan["warnings"]!.AsArray().OfType<JsonObject>().Single(w => w["code"]!.ToString() == "HOST_DISABLED_UNTIL_GUIDANCE_APPLIED");
        Assert.Contains("xe host-restart-agent host=xs5", warning["fix"]!.ToString(), StringComparison.Ordinal);
        // Never an 'xe host-enable' XAPI would refuse (xs2, xs3: until their reboot; xs5: until its toolstack restart).
        foreach (var refused in new[] { "xs2", "xs3", "xs5" })
        {
            Assert.DoesNotContain(plan["warnings"]!.AsArray(), w => w!["fix"]!.ToString().Contains($"host-enable host={refused}", StringComparison.Ordinal));
        }
        // The client says which xapi behaviour it assumes, read from host.software_version.
        var software = plan["pool"]!["software"]!.AsObject();
        Assert.Equal(("XenServer", "8.4.0", "26.1.4", true), (software["productBrand"]!.ToString(), software["productVersion"]!.ToString(), software["xapi"]!.ToString(), software["guidanceKeepsHostDisabled"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task Xs8AfterApplyUpdates_Exec_RebootsEachHostInTheRunOnce_EnablesThePatchedOnes_AndRestoresTheRest()
    {
        await using var lab = await StartAsync("xs8-after-apply-updates.json");
        var before = lab.Audit();

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "XS8-C", "--exec");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var after = lab.Audit();
        AssertPoolRestored(before, after);
        foreach (var h in new[] { "xs1", "xs2", "xs3", "xs4" })
        {
            Assert.Equal(1, Boots(after, h));
            Assert.True(Enabled(after, h), h);
        }

        Assert.Equal(0, Boots(after, "xs5"));
        Assert.Equal(0, Boots(after, "xs6"));
        Assert.False(Enabled(after, "xs5"));
        Assert.False(Enabled(after, "xs6"));
        Assert.Equal(["restart_toolstack"], HostOf(after, "xs5")["pendingGuidances"]!.AsArray().Select(g => g!.ToString()));
        Assert.Empty(HostOf(after, "xs2")["pendingGuidances"]!.AsArray());
        // xapi enabled the patched hosts itself after their reboot; no host.enable was asked of a host XAPI refuses.
        foreach (var h in new[] { "xs2", "xs3", "xs5" })
        {
            Assert.Empty(Events(after, "host.enable", h));
        }

        Assert.Contains("Pool XS8-POOL runs XenServer 8.4.0, xapi 26.1.4", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Xs8AfterApplyUpdates_OnlyNeedingReboot_RebootsJustThePatchedHosts()
    {
        await using var lab = await StartAsync("xs8-after-apply-updates.json");
        var before = lab.Audit();

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "XS8-C", "--exec", "--only-needing-reboot");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var after = lab.Audit();
        AssertPoolRestored(before, after);
        Assert.Equal(new[] { 0, 1, 1, 0, 0, 0 }, new[] { "xs1", "xs2", "xs3", "xs4", "xs5", "xs6" }.Select(h => Boots(after, h)));
        Assert.True(Enabled(after, "xs2") && Enabled(after, "xs3"));
    }

    [Fact]
    public async Task Xs8AfterApplyUpdates_PreHookSkipsAPatchedHost_ItIsLeftDisabledAsItWas_NeverEnabled()
    {
        await using var lab = await StartAsync("xs8-after-apply-updates.json");
        var before = lab.Audit();
        var pre = Script("pre.sh", """[ "$ROLLREBOOT_HOST" = xs2 ] && exit 70; exit 0""");

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "XS8-C", "--exec", "--pre-host-hook", pre);

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var after = lab.Audit();
        AssertPoolRestored(before, after);
        Assert.Equal(0, Boots(after, "xs2"));
        Assert.False(Enabled(after, "xs2"));
        Assert.Empty(Events(after, "host.enable", "xs2"));
        Assert.Equal(1, Boots(after, "xs3"));
        Assert.Contains("left disabled until its reboot, as it was", stderr + stdout, StringComparison.Ordinal);
        Assert.Contains("host xs2 left disabled, as it was before the run: mandatory guidance reboot_host is pending", stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Xs8AfterApplyUpdates_StoppedBeforeThePatchedHosts_RestoreSaysTheyStayDisabledUntilRebooted_Exit4()
    {
        await using var lab = await StartAsync("xs8-after-apply-updates.json");
        var before = lab.Audit();

        // The master is first: its pre hook fails, the run stops before any reboot and puts back what it changed.
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "XS8-C", "--exec", "--pre-host-hook", "echo patch failed >&2; exit 3");

        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        var after = lab.Audit();
        AssertPoolRestored(before, after);
        Assert.All(new[] { "xs1", "xs2", "xs3", "xs4", "xs5", "xs6" }, h => Assert.Equal(0, Boots(after, h)));
        Assert.True(Enabled(after, "xs1"));
        Assert.False(Enabled(after, "xs2"));
        Assert.False(Enabled(after, "xs3"));
        Assert.Empty(Events(after, "host.enable", "xs2"));
        Assert.Empty(Events(after, "host.enable", "xs3"));
        Assert.Contains("host xs2 left disabled, as it was before the run: mandatory guidance reboot_host is pending and XAPI refuses host.enable until the host reboots", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("OPERATOR ACTION", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task XcpNg82Patched_OnlyNeedingReboot_ReadsXenOrchestrasPatchTime_RebootsEachPatchedHostOnce()
    {
        await using var lab = await StartAsync("xcp-ng-82-patched.json");
        var before = lab.Audit();

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "XCP82-C", "--exec", "--only-needing-reboot");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var after = lab.Audit();
        AssertPoolRestored(before, after);
        Assert.Equal(new[] { 1, 1, 1, 0 }, new[] { "x1", "x2", "x3", "x4" }.Select(h => Boots(after, h)));
        Assert.All(new[] { "x1", "x2", "x3", "x4" }, h => Assert.True(Enabled(after, h)));
        Assert.Contains("Pool XCP82-POOL runs XCP-ng 8.2.1, xapi older than 22.9.0 (no xapi_build)", stderr, StringComparison.Ordinal);

        // Rebooted after the patch: nothing needs a reboot any more.
        var (statusCode, status, statusErr) = await lab.RunCliAsync("status", "--format", "json");
        Assert.True(statusCode == 0, statusErr);
        Assert.All(JsonNode.Parse(status)!["hosts"]!.AsArray(), h => Assert.False(h!["needsReboot"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task XcpNg83Patched_Exec_RebootsEveryHostOnce_AndRestores()
    {
        await using var lab = await StartAsync("xcp-ng-83-patched.json");
        var before = lab.Audit();

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "XCP83-C", "--exec", "--only-needing-reboot");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var after = lab.Audit();
        AssertPoolRestored(before, after);
        Assert.All(new[] { "y1", "y2", "y3" }, h => Assert.Equal(1, Boots(after, h)));
        Assert.All(new[] { "y1", "y2", "y3" }, h => Assert.True(Enabled(after, h)));
        Assert.Contains("XCP-ng 8.3.0, xapi 24.19.2", stderr, StringComparison.Ordinal);
    }
}
