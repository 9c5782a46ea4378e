using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// --shutdown-pinned-vms against the lab (issue 19): VMs that cannot be live-migrated (a USB device on the master, a
/// disk on a host's local SR, a PCI device in a guest without tools, a vGPU guest that ignores shutdown requests) stay on
/// their host: shut down right before its reboot, cleanly or powered off, and started there once it is back, before
/// CloudStack manages the cluster again. Asserted from the lab's audit; the kill -9 test shows restore starts them.
/// </summary>
public sealed class PinnedVmsEndToEndTests
{
    private const string Scenario = """
        {
          "name": "pinned", "pool": { "name": "PIN", "ha": { "enabled": true, "timeoutSeconds": 200, "hostFailuresToTolerate": 1, "heartbeatSr": "nfs" } },
          "cloudstack": { "clusterName": "CPIN" },
          "migration": { "setupSeconds": 4 },
          "hosts": [ { "name": "p1", "master": true, "memoryMiB": 65536, "rebootSeconds": 120 }, { "name": "p2", "memoryMiB": 65536, "rebootSeconds": 120 },
                     { "name": "p3", "memoryMiB": 65536, "rebootSeconds": 120 }, { "name": "p4", "memoryMiB": 65536, "rebootSeconds": 120 } ],
          "srs": [ { "name": "nfs", "shared": true }, { "name": "local-p3", "shared": false, "host": "p3" } ],
          "vms": [ { "name": "i-2-10-VM", "host": "p1", "memoryMiB": 4096, "vusb": true, "shutdownSeconds": 30 },
                   { "name": "i-2-11-VM", "host": "p3", "memoryMiB": 8192, "srs": ["local-p3"], "haProtected": true },
                   { "name": "i-2-12-VM", "host": "p2", "memoryMiB": 4096, "pci": true, "pvDrivers": false },
                   { "name": "i-2-13-VM", "host": "p4", "memoryMiB": 4096, "vgpu": true, "ignoresShutdown": true } ],
          "generate": [ { "hosts": ["p1", "p2", "p3", "p4"], "perHost": 4, "memoryMiB": [2048, 4096], "seed": 8 } ]
        }
        """;

    private static readonly Dictionary<string, string> s_pinnedOn = new()
    {
        ["i-2-10-VM"] = "p1",
        ["i-2-11-VM"] = "p3",
        ["i-2-12-VM"] = "p2",
        ["i-2-13-VM"] = "p4",
    };

    private static List<JsonObject> Events(JsonObject audit, string type, string? vm = null, string? host = null) =>
        [.. audit["events"]!.AsArray().OfType<JsonObject>()
            .Where(e => e["type"]!.ToString() == type && (vm is null || e["vm"]?.ToString() == vm) && (host is null || e["host"]?.ToString() == host))];

    private static double T(JsonObject e) => e["t"]!.GetValue<double>();

    private static string ResidentOn(JsonObject audit, string vm) =>
        audit["vms"]!.AsArray().Single(v => v!["name"]!.ToString() == vm)!["residentOn"]!.ToString();

    [Fact]
    public async Task DryRun_WithoutTheOptionPinnedVmsBlock_WithItThePlanShowsTheirShutdowns_NothingChanged()
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CPIN");
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("VM_HAS_VUSBS", stdout, StringComparison.Ordinal);
        Assert.Contains("VM_REQUIRES_SR", stdout, StringComparison.Ordinal);

        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CPIN", "--shutdown-pinned-vms", "--format", "json");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var plan = JsonNode.Parse(stdout)!;
        Assert.Empty(plan["blockers"]!.AsArray());
        foreach (var (vm, host) in s_pinnedOn)
        {
            var step = plan["steps"]!.AsArray().Single(s => s!["host"]!.ToString() == host)!;
            Assert.Contains(step["shutdowns"]!.AsArray(), p => p!["vm"]!.ToString() == vm);
            Assert.DoesNotContain(plan["steps"]!.AsArray().SelectMany(s => s!["migrations"]!.AsArray()), m => m!["vm"]!.ToString() == vm);
        }

        Assert.Contains(plan["warnings"]!.AsArray(), w => w!["code"]!.ToString() == "VM_SHUTDOWN_FOR_REBOOT");
        (code, stdout, _) = await lab.RunCliAsync("--clustername", "CPIN", "--shutdown-pinned-vms");
        Assert.Contains("shut down for the reboot, started on p3 again after it: i-2-11-VM", stdout, StringComparison.Ordinal);
        AuditAssert.NothingChanged(lab.Audit());
    }

    [Fact]
    public async Task Exec_ShutsEachDownBeforeItsHostGoesDown_StartsItThereAfterItIsBack_EverythingRestored()
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CPIN", "--exec", "--shutdown-pinned-vms", "--shutdown-timeout", "3m");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AuditAssert.Restored(audit);
        Assert.All(AuditAssert.BootCounts(audit), n => Assert.Equal(1, n));
        var managed = T(Events(audit, "cloudstack.managedState").Last());
        foreach (var (vm, host) in s_pinnedOn)
        {
            Assert.Empty(Events(audit, "migration.start", vm));
            var down = T(Events(audit, "host.down", host: host).Single());
            var up = T(Events(audit, "host.up", host: host).Single());
            var off = Events(audit, "vm.shutdown", vm).Single();
            var on = Events(audit, "vm.start", vm).Single();
            Assert.Equal(host, off["host"]!.ToString());
            Assert.True(T(off) < down, $"{vm} halted at {T(off)}, {host} down at {down}");
            Assert.Equal(host, on["host"]!.ToString());
            Assert.True(T(on) > up && T(on) < managed, $"{vm} started at {T(on)}, {host} up at {up}, Managed at {managed}");
            Assert.Equal(host, ResidentOn(audit, vm));
        }

        // Tools: clean. No tools, no feature-shutdown: VM_LACKS_FEATURE, so powered off. Ignores the request: xenopsd gives
        // up after 60 s (VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT), powered off.
        Assert.Equal("clean", Events(audit, "vm.shutdown", "i-2-10-VM").Single()["how"]!.ToString());
        Assert.Equal("clean", Events(audit, "vm.shutdown", "i-2-11-VM").Single()["how"]!.ToString());
        Assert.Equal("hard", Events(audit, "vm.shutdown", "i-2-12-VM").Single()["how"]!.ToString());
        Assert.Equal("hard", Events(audit, "vm.shutdown", "i-2-13-VM").Single()["how"]!.ToString());
        Assert.Equal("VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT", Events(audit, "vm.shutdown.failed", "i-2-13-VM").Single()["error"]!.ToString());
        Assert.Contains("VM_LACKS_FEATURE", stderr, StringComparison.Ordinal);
        Assert.Contains("p3: i-2-11-VM shut down for its reboot (they cannot be live-migrated) and running on it again", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KillDashNine_AfterAShutdown_RestoreStartsTheVmOnItsHost_NothingLost()
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 100);
        // The pre hook runs once p2 is empty and its pinned VM shut down: it holds p2 there, and the run is killed meanwhile.
        using var process = await lab.StartCliUntilAsync("i-2-12-VM on p2: clean shutdown failed",
            "--clustername", "CPIN", "--exec", "--shutdown-pinned-vms", "--pre-host-hook", "[ \"$ROLLREBOOT_HOST\" != p2 ] || sleep 60");
        var started = TimeProvider.System.GetTimestamp();
        while (Events(lab.Audit(), "vm.shutdown", "i-2-12-VM").Count == 0 && TimeProvider.System.GetElapsedTime(started) < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), TimeProvider.System);
        }

        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        var mid = lab.Audit();
        Assert.Equal("Halted", mid["vms"]!.AsArray().Single(v => v!["name"]!.ToString() == "i-2-12-VM")!["powerState"]!.ToString());

        var (code, stdout, stderr) = await lab.RunCliAsync("restore", "--clustername", "CPIN");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AuditAssert.Restored(audit);
        Assert.Equal("p2", ResidentOn(audit, "i-2-12-VM"));
        Assert.Contains("VM i-2-12-VM running again on p2", stdout + stderr, StringComparison.Ordinal);
        Assert.Equal(0, AuditAssert.BootCounts(audit)[1]);
    }
}
