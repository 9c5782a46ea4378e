using System.Globalization;
using System.Text.Json.Nodes;
using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>The pool's physics: migration times, memory, reboots and what they do to VMs and sessions.</summary>
public sealed class PhysicsTests
{
    private const double MB = 1e6;
    private const double MiB = 1024 * 1024;

    // Event times are rounded to the millisecond and a transfer ends within a millisecond of its last byte.
    private const double Tolerance = 0.01;

    private const string ThreeHosts = """
        { "migration": { "streamMBps": 100, "hostLinkMBps": 150, "setupSeconds": 3, "dirtyRatio": 0.1 },
          "pool": { "toolstackStartSeconds": 5 },
          "hosts": [ { "name": "src", "memoryMiB": 65536, "rebootSeconds": 30 }, { "name": "t1", "memoryMiB": 65536, "rebootSeconds": 30 },
                     { "name": "t2", "memoryMiB": 65536, "rebootSeconds": 30 } ],
          "vms": [ { "name": "small", "host": "src", "memoryMiB": 1000 }, { "name": "large", "host": "src", "memoryMiB": 2000 } ] }
        """;

    private static double Duration(JsonObject audit, string vm, int index = 0) =>
        Audit.T(Audit.Events(audit, "migration.end", vm: vm)[index]) - Audit.T(Audit.Events(audit, "migration.start", vm: vm)[index]);

    [Fact]
    public async Task Migration_Alone_TakesSetupPlusMemoryWithDirtyPagesOverTheStream()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        await using var pool = new XapiPoolConnection(Labs.Client(lab));
        var snapshot = await pool.ReadAsync();

        await pool.MigrateVmAsync(snapshot.Vms.Single(v => v.Name == "small").Uuid, snapshot.Hosts.Single(h => h.Name == "t1").Uuid);

        var audit = lab.AuditJson();
        var bytes = 1000 * MiB * 1.1;
        Assert.Equal((long)bytes, Audit.Events(audit, "migration.start", vm: "small").Single()["bytes"]!.GetValue<long>());
        // min(stream 100, link 150 / 1 outgoing, link 150 / 1 incoming) = 100 MB/s.
        Assert.Equal(3 + (bytes / (100 * MB)), Duration(audit, "small"), Tolerance);
        Assert.Equal("t1", Audit.Vm(audit, "small")["residentOn"]!.GetValue<string>());
    }

    [Fact]
    public async Task Migrations_FromOneSource_ShareItsLink_AndTheLastGetsItAllWhenTheOtherEnds()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        await using var client = Labs.Client(lab);
        var src = (await client.CallAsync("host.get_by_name_label", ["src"]))!.AsArray()[0]!.GetValue<string>();

        // host.evacuate starts both at the same instant, onto the two targets (one incoming each).
        await client.CallAsync("host.evacuate", [src]);

        var audit = lab.AuditJson();
        var starts = Audit.Events(audit, "migration.start");
        Assert.Equal(2, starts.Count);
        Assert.Equal(Audit.T(starts[0]), Audit.T(starts[1]));
        Assert.NotEqual(starts[0]["to"]!.GetValue<string>(), starts[1]["to"]!.GetValue<string>());
        var smallBytes = 1000 * MiB * 1.1;
        var largeBytes = 2000 * MiB * 1.1;
        // Both transfer at min(100, 150 / 2, 150 / 1) = 75 MB/s until the small one ends; then the large one at 100 MB/s.
        var smallEnds = 3 + (smallBytes / (75 * MB));
        var largeEnds = smallEnds + ((largeBytes - smallBytes) / (100 * MB));
        Assert.Equal(smallEnds, Duration(audit, "small"), Tolerance);
        Assert.Equal(largeEnds, Duration(audit, "large"), Tolerance);
    }

    [Fact]
    public async Task Migrations_OneOfTwoCancelled_TheOtherGetsTheWholeLinkAtOnce()
    {
        // Slower clock: the cancel must land while the small migration still transfers (13 s of it: 0.3 s of wall time).
        await using var lab = await Labs.StartAsync(ThreeHosts, 40);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "src");
        var s = await raw.LoginAsync(m);
        var small = await raw.RefAsync(m, s, "VM", "small");
        var large = await raw.RefAsync(m, s, "VM", "large");
        var t1 = await raw.RefAsync(m, s, "host", "t1");
        var t2 = await raw.RefAsync(m, s, "host", "t2");
        var largeTask = (await raw.CallAsync(m, "Async.VM.pool_migrate", s, large, t1, new JsonObject()))!.GetValue<string>();
        var smallTask = (await raw.CallAsync(m, "Async.VM.pool_migrate", s, small, t2, new JsonObject()))!.GetValue<string>();

        // Cancel the small one once both are transferring (setup is 3 s).
        var smallStart = Audit.T(Audit.Events(lab.AuditJson(), "migration.start", vm: "small").Single());
        await Wait.UntilSimulatedAsync(lab, smallStart + 5);
        await raw.CallAsync(m, "task.cancel", s, smallTask);
        Assert.Equal("cancelled", (await raw.WaitTaskAsync(m, s, smallTask))["status"]!.GetValue<string>());
        Assert.Equal("success", (await raw.WaitTaskAsync(m, s, largeTask))["status"]!.GetValue<string>());

        // Replay the model: large alone at 100 MB/s until small's transfer starts, both at 75 MB/s until the
        // cancel, then large alone at 100 MB/s.
        var audit = lab.AuditJson();
        var largeStart = Audit.T(Audit.Events(audit, "migration.start", vm: "large").Single());
        var cancelled = Audit.Events(audit, "migration.end", vm: "small").Single();
        Assert.False(cancelled["ok"]!.GetValue<bool>());
        Assert.Equal("TASK_CANCELLED", cancelled["error"]!.GetValue<string>());
        var remaining = 2000 * MiB * 1.1;
        var t = largeStart + 3;
        remaining -= (smallStart + 3 - t) * 100 * MB;
        remaining -= (Audit.T(cancelled) - (smallStart + 3)) * 75 * MB;
        var expectedEnd = Audit.T(cancelled) + (remaining / (100 * MB));
        Assert.Equal(expectedEnd, Audit.T(Audit.Events(audit, "migration.end", vm: "large").Single()), Tolerance);
        Assert.Equal("src", Audit.Vm(audit, "small")["residentOn"]!.GetValue<string>());
    }

    [Fact]
    public async Task Migration_TargetWithoutFreeMemory_IsRefusedCountingMigrationsUnderway()
    {
        await using var lab = await Labs.StartAsync("""
            { "migration": { "setupSeconds": 600 },
              "hosts": [ { "name": "big", "memoryMiB": 65536 }, { "name": "small", "memoryMiB": 16384, "dom0MemoryMiB": 4096 } ],
              "vms": [ { "name": "huge", "host": "big", "memoryMiB": 14000 }, { "name": "half1", "host": "big", "memoryMiB": 7000 },
                       { "name": "half2", "host": "big", "memoryMiB": 7000 } ] }
            """);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "big");
        var s = await raw.LoginAsync(m);
        var small = await raw.RefAsync(m, s, "host", "small");
        var free = 12288 * (long)MiB;

        var e = await raw.FailsAsync(m, "VM.pool_migrate", s, await raw.RefAsync(m, s, "VM", "huge"), small, new JsonObject());
        Assert.Equal("HOST_NOT_ENOUGH_FREE_MEMORY", e.Code);
        // Needed: memory plus XAPI's overhead (1/128, rounded up to a MiB); available: what dom0 leaves.
        Assert.Equal([((14000 + 110) * (long)MiB).ToString(CultureInfo.InvariantCulture), free.ToString(CultureInfo.InvariantCulture)], e.Parameters);

        // half1 fits; once it is on its way (still in setup), its memory is taken on the target and half2 no longer fits.
        var moving = (await raw.CallAsync(m, "Async.VM.pool_migrate", s, await raw.RefAsync(m, s, "VM", "half1"), small, new JsonObject()))!.GetValue<string>();
        e = await raw.FailsAsync(m, "VM.pool_migrate", s, await raw.RefAsync(m, s, "VM", "half2"), small, new JsonObject());
        Assert.Equal("HOST_NOT_ENOUGH_FREE_MEMORY", e.Code);
        Assert.Equal((free - ((7000 + 55) * (long)MiB)).ToString(CultureInfo.InvariantCulture), e.Parameters[1]);
        Assert.Equal("pending", (await raw.CallAsync(m, "task.get_status", s, moving))!.GetValue<string>());
        // message_forwarding.ml pool_migrate, reserve_memory_for_vm: the reservation is the VM's scheduled_to_be_resident_on
        // while it is still resident on its source; clear_reservations empties it when the migration ends.
        var half1 = await raw.RefAsync(m, s, "VM", "half1");
        Assert.Equal(small, (await raw.CallAsync(m, "VM.get_scheduled_to_be_resident_on", s, half1))!.GetValue<string>());
        Assert.Equal(await raw.RefAsync(m, s, "host", "big"), (await raw.CallAsync(m, "VM.get_resident_on", s, half1))!.GetValue<string>());
        Assert.Equal("success", (await raw.WaitTaskAsync(m, s, moving))["status"]!.GetValue<string>());
        Assert.Equal("OpaqueRef:NULL", (await raw.CallAsync(m, "VM.get_scheduled_to_be_resident_on", s, half1))!.GetValue<string>());
        Assert.Equal(small, (await raw.CallAsync(m, "VM.get_resident_on", s, half1))!.GetValue<string>());

        var audit = lab.AuditJson();
        Assert.Equal(["half1"], Audit.Events(audit, "migration.start").Select(x => x["vm"]!.GetValue<string>()));
        Assert.Equal("big", Audit.Vm(audit, "huge")["residentOn"]!.GetValue<string>());
    }

    [Fact]
    public async Task AsyncCallRefused_LeavesNoTaskBehind()
    {
        await using var lab = await Labs.StartAsync("""
            { "hosts": [ { "name": "big", "memoryMiB": 65536 }, { "name": "small", "memoryMiB": 16384, "dom0MemoryMiB": 4096 } ],
              "vms": [ { "name": "huge", "host": "big", "memoryMiB": 14000 } ] }
            """);
        await using var client = Labs.Client(lab);
        var vm = (await client.CallAsync("VM.get_by_name_label", ["huge"]))!.AsArray()[0]!.GetValue<string>();
        var small = (await client.CallAsync("host.get_by_name_label", ["small"]))!.AsArray()[0]!.GetValue<string>();

        var e = await Assert.ThrowsAsync<XapiException>(() => client.RunTaskAsync("VM.pool_migrate", [vm, small, new Dictionary<string, string>()]));

        Assert.Equal("HOST_NOT_ENOUGH_FREE_MEMORY", e.Code);
        Assert.Empty((await client.CallAsync("task.get_all", []))!.AsArray());
    }

    [Fact]
    public async Task Reboot_EnabledHost_IsRefusedWithHostNotDisabled()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        await using var client = Labs.Client(lab);
        var t1 = (await client.CallAsync("host.get_by_name_label", ["t1"]))!.AsArray()[0]!.GetValue<string>();

        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.reboot", [t1]));

        Assert.Equal("HOST_NOT_DISABLED", e.Code);
        var audit = lab.AuditJson();
        Assert.Empty(Audit.Events(audit, "host.reboot"));
        await Wait.UntilSimulatedAsync(lab, Audit.Now(audit) + 15);
        Assert.Empty(Audit.Events(lab.AuditJson(), "host.down"));
    }

    [Fact]
    public async Task Reboot_HostStillRunningVms_ShutsThemDownWithAViolation()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        await using var client = Labs.Client(lab);
        var src = (await client.CallAsync("host.get_by_name_label", ["src"]))!.AsArray()[0]!.GetValue<string>();
        await client.CallAsync("host.disable", [src]);
        await client.CallAsync("host.reboot", [src]);

        var down = await Wait.ForEventAsync(lab, "host.down", "src");

        var audit = lab.AuditJson();
        var reboot = Audit.Events(audit, "host.reboot", "src").Single();
        Assert.Equal(2, reboot["residentVms"]!.GetValue<int>());
        Assert.Equal(10, Audit.T(down) - Audit.T(reboot), Tolerance);
        var halted = Audit.Events(audit, "vm.halted");
        Assert.Equal(["large", "small"], halted.Select(h => h["vm"]!.GetValue<string>()).Order());
        Assert.All(halted, h => Assert.Equal("host src went down", h["reason"]!.GetValue<string>()));
        var violation = Assert.Single(Audit.Violations(audit));
        Assert.Contains("host src went down while running 2 VM(s)", violation, StringComparison.Ordinal);
        Assert.All(new[] { "small", "large" }, name =>
        {
            Assert.Equal("Halted", Audit.Vm(audit, name)["powerState"]!.GetValue<string>());
            Assert.Null(Audit.Vm(audit, name)["residentOn"]);
        });
        // src is the master: XAPI answers again only once it is back (at a fast scale that can be before or after this point).
        await Wait.ForEventAsync(lab, "host.toolstackReady", "src");
        var vm = (await client.CallAsync("VM.get_by_name_label", ["small"]))!.AsArray()[0]!.GetValue<string>();
        Assert.Equal("Halted", (await client.CallAsync("VM.get_power_state", [vm]))!.GetValue<string>());
    }

    [Fact]
    public async Task Reboot_Master_KillsSessions_MembersNameIt_LoginWorksOnceItIsBack()
    {
        await using var lab = await Labs.StartAsync("""
            { "pool": { "toolstackStartSeconds": 5 },
              "hosts": [ { "name": "m", "memoryMiB": 65536, "rebootSeconds": 300 }, { "name": "b", "memoryMiB": 65536 } ],
              "vms": [ { "name": "v", "host": "b", "memoryMiB": 1024 } ] }
            """);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var b = Labs.Address(lab, "b");
        var session = await raw.LoginAsync(m);
        var master = await raw.RefAsync(m, session, "host", "m");
        await raw.CallAsync(m, "host.disable", session, master);
        await raw.CallAsync(m, "host.reboot", session, master);

        await Wait.ForEventAsync(lab, "host.down", "m");
        var whileDown = await raw.FailsAsync(b, "session.login_with_password", raw.User, raw.Password, "1.1", "lab-tests");
        Assert.Equal("HOST_IS_SLAVE", whileDown.Code);
        Assert.Equal([m], whileDown.Parameters);
        Assert.False(await raw.AnswersAsync(m));

        await Wait.ForEventAsync(lab, "host.toolstackReady", "m");
        await Wait.UntilAsync(() => raw.AnswersAsync(m), "the master's XAPI to listen again");
        var stale = await raw.FailsAsync(m, "pool.get_all", session);
        Assert.Equal("SESSION_INVALID", stale.Code);
        Assert.Equal([session], stale.Parameters);

        var fresh = await raw.LoginAsync(m);
        Assert.NotEqual(session, fresh);
        Assert.Single((await raw.CallAsync(m, "pool.get_all", fresh))!.AsArray());
        Assert.Equal("HOST_IS_SLAVE", (await raw.FailsAsync(b, "session.login_with_password", raw.User, raw.Password)).Code);
        var audit = lab.AuditJson();
        Assert.Equal("m", audit["pool"]!["master"]!.GetValue<string>());
        Assert.Equal("Running", Audit.Vm(audit, "v")["powerState"]!.GetValue<string>());
        Assert.Empty(Audit.Violations(audit));
    }

    [Fact]
    public async Task Reboot_BootTimeAndAgentStartTimeMoveForward_AndTheHostEnablesItself()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        await using var client = Labs.Client(lab);
        var t1 = (await client.CallAsync("host.get_by_name_label", ["t1"]))!.AsArray()[0]!.GetValue<string>();
        var before = (JsonObject)(await client.CallAsync("host.get_other_config", [t1]))!;
        await client.CallAsync("host.disable", [t1]);
        var requested = Unix(XapiTime((await client.CallAsync("host.get_servertime", [t1]))!.GetValue<string>()));
        await client.CallAsync("host.reboot", [t1]);

        await Wait.ForEventAsync(lab, "host.toolstackReady", "t1");

        var record = (JsonObject)(await client.CallAsync("host.get_record", [t1]))!;
        var after = record["other_config"]!.AsObject();
        var bootTime = Seconds(after, "boot_time");
        var agentStart = Seconds(after, "agent_start_time");
        Assert.True(Seconds(before, "boot_time") < requested, "the first boot was long ago");
        Assert.True(bootTime > requested + 10, $"boot_time {bootTime} should be after the reboot request {requested} plus its shutdown");
        Assert.True(agentStart >= bootTime, "the toolstack starts after the host boots");
        Assert.True(agentStart > Seconds(before, "agent_start_time"));
        Assert.True(record["enabled"]!.GetValue<bool>());
        Assert.True((await client.CallAsync("host_metrics.get_live", [record["metrics"]!.GetValue<string>()]))!.GetValue<bool>());
        var audit = lab.AuditJson();
        Assert.Equal(1, Audit.Host(audit, "t1")["bootCount"]!.GetValue<int>());
        Assert.Equal(30, Audit.T(Audit.Events(audit, "host.up", "t1").Single()) - Audit.T(Audit.Events(audit, "host.down", "t1").Single()), Tolerance);
    }

    private static double Seconds(JsonObject otherConfig, string key) =>
        double.Parse(otherConfig[key]!.GetValue<string>(), CultureInfo.InvariantCulture);

    private static DateTimeOffset XapiTime(string text) =>
        DateTimeOffset.ParseExact(text, "yyyyMMdd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private static double Unix(DateTimeOffset t) => (t - DateTimeOffset.UnixEpoch).TotalSeconds;
}
