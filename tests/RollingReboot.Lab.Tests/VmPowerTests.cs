using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// VM.clean_shutdown, VM.hard_shutdown and VM.start_on as xen-api has them (SimVmPower.cs cites the files):
/// xapi_vm_lifecycle.ml allowed_power_states and check_op_for_feature (strict), message_forwarding.ml (hard_shutdown
/// cancels a clean shutdown; start_on), xapi_vm_helpers.ml assert_can_boot_here, xenopsd's 60 s acknowledgement bound.
/// </summary>
public sealed class VmPowerTests
{
    private const string Scenario = """
        { "pool": { "toolstackStartSeconds": 2 },
          "srs": [ { "name": "nfs", "shared": true }, { "name": "local-b", "shared": false, "host": "b" } ],
          "hosts": [ { "name": "a", "master": true, "memoryMiB": 65536, "rebootSeconds": 20 },
                     { "name": "b", "memoryMiB": 65536, "rebootSeconds": 20 } ],
          "vms": [ { "name": "tools", "host": "b", "memoryMiB": 4096, "powerState": "Running", "srs": ["local-b"], "pvDrivers": true, "shutdownSeconds": 30 },
                   { "name": "agent", "host": "b", "memoryMiB": 4096, "powerState": "Running", "srs": ["nfs"], "pvDrivers": false, "featureShutdown": true },
                   { "name": "bare", "host": "b", "memoryMiB": 4096, "powerState": "Running", "srs": ["nfs"], "pvDrivers": false, "featureSuspend": true },
                   { "name": "deaf", "host": "b", "memoryMiB": 4096, "powerState": "Running", "srs": ["nfs"], "pvDrivers": true, "ignoresShutdown": true } ] }
        """;

    private static async Task<string> RefAsync(XapiClient client, string cls, string name) =>
        (await client.CallAsync(cls + ".get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();

    private static async Task<List<string>> AllowedAsync(XapiClient client, string vm) =>
        [.. (await client.CallAsync("VM.get_allowed_operations", [vm]))!.AsArray().Select(x => x!.GetValue<string>())];

    [Fact]
    public async Task CleanShutdown_GuestThatCanBeAsked_HaltsAfterItsTime_AndStartOnBringsItBackThere()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var vm = await RefAsync(client, "VM", "tools");
        var b = await RefAsync(client, "host", "b");
        Assert.Contains("clean_shutdown", await AllowedAsync(client, vm));

        await client.RunTaskAsync("VM.clean_shutdown", [vm]);
        Assert.Equal("Halted", (await client.CallAsync("VM.get_power_state", [vm]))!.GetValue<string>());
        Assert.Equal("OpaqueRef:NULL", (await client.CallAsync("VM.get_resident_on", [vm]))!.GetValue<string>());
        var audit = lab.AuditJson();
        var started = Audit.T(Audit.Events(audit, "vm.shutdown.start", vm: "tools").Single());
        var done = Audit.Events(audit, "vm.shutdown", vm: "tools").Single();
        Assert.Equal("clean", done["how"]!.GetValue<string>());
        Assert.InRange(Audit.T(done) - started, 29.9, 31);

        // Halted: a second shutdown names the power states it needs, lowercase (report_power_state_error).
        var e = await Assert.ThrowsAsync<XapiException>(() => client.RunTaskAsync("VM.clean_shutdown", [vm]));
        Assert.Equal("VM_BAD_POWER_STATE", e.Code);
        Assert.Equal([vm, "running", "halted"], e.Parameters);
        Assert.Contains("start_on", await AllowedAsync(client, vm));

        // Its disk is on b's local SR: start_on b (disabled) is refused, then runs once b is enabled.
        await client.CallAsync("host.disable", [b]);
        e = await Assert.ThrowsAsync<XapiException>(() => client.RunTaskAsync("VM.start_on", [vm, b, false, false]));
        Assert.Equal("HOST_DISABLED", e.Code);
        Assert.Equal([b], e.Parameters);
        var a = await RefAsync(client, "host", "a");
        e = await Assert.ThrowsAsync<XapiException>(() => client.RunTaskAsync("VM.start_on", [vm, a, false, false]));
        Assert.Equal("VM_REQUIRES_SR", e.Code);
        await client.CallAsync("host.enable", [b]);
        await client.RunTaskAsync("VM.start_on", [vm, b, false, false]);
        Assert.Equal("Running", (await client.CallAsync("VM.get_power_state", [vm]))!.GetValue<string>());
        Assert.Equal(b, (await client.CallAsync("VM.get_resident_on", [vm]))!.GetValue<string>());
        Assert.Single(Audit.Events(lab.AuditJson(), "vm.start", "b", "tools"));

        e = await Assert.ThrowsAsync<XapiException>(() => client.RunTaskAsync("VM.start_on", [vm, b, false, false]));
        Assert.Equal([vm, "halted", "running"], e.Parameters);
        Assert.Empty(Audit.Violations(lab.AuditJson()));
    }

    [Fact]
    public async Task CleanShutdown_HvmGuestWithoutToolsOrFeature_IsLacksFeature_HardShutdownPowersItOff()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var bare = await RefAsync(client, "VM", "bare");
        var agent = await RefAsync(client, "VM", "agent");
        var allowed = await AllowedAsync(client, bare);
        Assert.DoesNotContain("clean_shutdown", allowed);
        Assert.Contains("hard_shutdown", allowed);
        Assert.Contains("clean_shutdown", await AllowedAsync(client, agent));

        var e = await Assert.ThrowsAsync<XapiException>(() => client.RunTaskAsync("VM.clean_shutdown", [bare]));
        Assert.Equal("VM_LACKS_FEATURE", e.Code);
        Assert.Equal([bare], e.Parameters);
        Assert.Equal("Running", (await client.CallAsync("VM.get_power_state", [bare]))!.GetValue<string>());

        await client.RunTaskAsync("VM.hard_shutdown", [bare]);
        Assert.Equal("Halted", (await client.CallAsync("VM.get_power_state", [bare]))!.GetValue<string>());
        Assert.Equal("hard", Audit.Events(lab.AuditJson(), "vm.shutdown", vm: "bare").Single()["how"]!.GetValue<string>());
        e = await Assert.ThrowsAsync<XapiException>(() => client.RunTaskAsync("VM.hard_shutdown", [bare]));
        Assert.Equal([bare, "paused, suspended, running", "halted"], e.Parameters);

        // feature-shutdown=1 without PV drivers: the guest can be asked.
        await client.RunTaskAsync("VM.clean_shutdown", [agent]);
        Assert.Equal("clean", Audit.Events(lab.AuditJson(), "vm.shutdown", vm: "agent").Single()["how"]!.GetValue<string>());
    }

    [Fact]
    public async Task CleanShutdown_GuestThatNeverAcknowledges_FailsAfterSixtySeconds_StillRunning()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var deaf = await RefAsync(client, "VM", "deaf");
        var e = await Assert.ThrowsAsync<XapiException>(() => client.RunTaskAsync("VM.clean_shutdown", [deaf]));
        Assert.Equal("VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT", e.Code);
        Assert.Equal([deaf], e.Parameters);
        var audit = lab.AuditJson();
        Assert.Equal(60, Audit.T(Audit.Events(audit, "vm.shutdown.failed", vm: "deaf").Single()) - Audit.T(Audit.Events(audit, "vm.shutdown.start", vm: "deaf").Single()), 3);
        Assert.Equal("Running", (await client.CallAsync("VM.get_power_state", [deaf]))!.GetValue<string>());
        Assert.Empty((await client.CallAsync("VM.get_current_operations", [deaf]))!.AsObject());
    }

    [Fact]
    public async Task HardShutdown_CancelsACleanShutdownInProgress()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var deaf = await RefAsync(client, "VM", "deaf");
        var task = (await client.CallAsync("Async.VM.clean_shutdown", [deaf]))!.GetValue<string>();
        Assert.Equal(["clean_shutdown"], (await client.CallAsync("VM.get_current_operations", [deaf]))!.AsObject().Select(kv => kv.Value!.GetValue<string>()));

        // Beside a clean shutdown only hard_shutdown may run (is_allowed_concurrently); it cancels the clean one first.
        await client.RunTaskAsync("VM.hard_shutdown", [deaf]);
        Assert.Equal("Halted", (await client.CallAsync("VM.get_power_state", [deaf]))!.GetValue<string>());
        Assert.Equal("cancelled", (await client.CallAsync("task.get_status", [task]))!.GetValue<string>());
        Assert.Equal("TASK_CANCELLED", (await client.CallAsync("task.get_error_info", [task]))!.AsArray()[0]!.GetValue<string>());
    }

    [Fact]
    public async Task TaskCancel_OfACleanShutdown_LeavesTheVmRunning()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var tools = await RefAsync(client, "VM", "tools");
        var task = (await client.CallAsync("Async.VM.clean_shutdown", [tools]))!.GetValue<string>();
        await client.CallAsync("task.cancel", [task]);
        Assert.Equal("cancelled", (await client.CallAsync("task.get_status", [task]))!.GetValue<string>());
        Assert.Equal("Running", (await client.CallAsync("VM.get_power_state", [tools]))!.GetValue<string>());
        Assert.Empty(Audit.Events(lab.AuditJson(), "vm.shutdown", vm: "tools"));
    }
}
