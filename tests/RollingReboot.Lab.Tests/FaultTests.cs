using System.Text.Json.Nodes;
using RollingReboot.CloudStack;
using RollingReboot.Core.Ports;
using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>Each fault type of the contract (and the lab's extensions), driven over the wire and read back from the audit.</summary>
public sealed class FaultTests
{
    private static string Pool(string faults, string extraHost = "", string cloudStack = "", string ha = "") => $$"""
        { {{cloudStack}}
          "migration": { "setupSeconds": 2, "streamMBps": 1000, "hostLinkMBps": 1000 },
          "pool": { "toolstackStartSeconds": 2 {{ha}} },
          "hosts": [ { "name": "a", "memoryMiB": 65536, "rebootSeconds": 20 }, { "name": "b", "memoryMiB": 65536, "rebootSeconds": 20 }{{extraHost}} ],
          "vms": [ { "name": "i-2-1-VM", "host": "a", "memoryMiB": 1024 } ],
          "faults": [ {{faults}} ] }
        """;

    [Fact]
    public async Task MigrationFails_NextTimesMigrationsFailWithTheError_ThenOneSucceeds()
    {
        await using var lab = await Labs.StartAsync(Pool("""{ "type": "migrationFails", "vm": "i-2-1-VM", "times": 2, "error": ["VM_MIGRATE_FAILED", "simulated"] }"""));
        using var raw = new RawXapi(lab);
        var a = Labs.Address(lab, "a");
        var s = await raw.LoginAsync(a);
        var vm = await raw.RefAsync(a, s, "VM", "i-2-1-VM");
        var b = await raw.RefAsync(a, s, "host", "b");

        var outcomes = new List<JsonObject>();
        for (var i = 0; i < 3; i++)
        {
            var task = (await raw.CallAsync(a, "Async.VM.pool_migrate", s, vm, b, new JsonObject { ["live"] = "true" }))!.GetValue<string>();
            outcomes.Add(await raw.WaitTaskAsync(a, s, task));
        }

        Assert.Equal(["failure", "failure", "success"], outcomes.Select(t => t["status"]!.GetValue<string>()));
        Assert.Equal(["VM_MIGRATE_FAILED", "simulated"], outcomes[0]["error_info"]!.AsArray().Select(e => e!.GetValue<string>()));
        Assert.Equal(["VM_MIGRATE_FAILED", "simulated"], outcomes[1]["error_info"]!.AsArray().Select(e => e!.GetValue<string>()));
        Assert.Empty(outcomes[2]["error_info"]!.AsArray());
        Assert.Equal(b, (await raw.CallAsync(a, "VM.get_resident_on", s, vm))!.GetValue<string>());

        var audit = lab.AuditJson();
        var ends = Audit.Events(audit, "migration.end", vm: "i-2-1-VM");
        Assert.Equal([false, false, true], ends.Select(e => e["ok"]!.GetValue<bool>()));
        Assert.Equal("VM_MIGRATE_FAILED", ends[0]["error"]!.GetValue<string>());
        Assert.Equal(3, Audit.Events(audit, "migration.start", vm: "i-2-1-VM").Count);
        Assert.Equal(1, Audit.Vm(audit, "i-2-1-VM")["migrations"]!.GetValue<int>());
        Assert.Equal("b", Audit.Vm(audit, "i-2-1-VM")["residentOn"]!.GetValue<string>());
        Assert.Empty(Audit.Violations(audit));
    }

    [Fact]
    public async Task HostDoesNotReturn_AfterRebootGoesDownAndNeverComesUp()
    {
        await using var lab = await Labs.StartAsync(Pool("""{ "type": "hostDoesNotReturn", "host": "b" }"""));
        await using var client = Labs.Client(lab);
        var b = (await client.CallAsync("host.get_by_name_label", ["b"]))!.AsArray()[0]!.GetValue<string>();
        await client.CallAsync("host.disable", [b]);
        await client.CallAsync("host.reboot", [b]);

        var down = await Wait.ForEventAsync(lab, "host.down", "b");
        // Many times its rebootSeconds later it is still down.
        await Wait.UntilSimulatedAsync(lab, Audit.T(down) + (20 * 5));

        var audit = lab.AuditJson();
        Assert.Single(Audit.Events(audit, "host.reboot", "b"));
        Assert.Empty(Audit.Events(audit, "host.up", "b"));
        var host = Audit.Host(audit, "b");
        Assert.False(host["live"]!.GetValue<bool>());
        Assert.Equal(0, host["bootCount"]!.GetValue<int>());
        var metrics = (await client.CallAsync("host.get_metrics", [b]))!.GetValue<string>();
        Assert.False((await client.CallAsync("host_metrics.get_live", [metrics]))!.GetValue<bool>());
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.enable", [b]));
        Assert.Equal("HOST_OFFLINE", e.Code);
    }

    [Fact]
    public async Task SlowReboot_HostIsUpOnlyAfterTheFaultsRebootSeconds()
    {
        // b takes 150 s instead of 20; c, without the fault, is the control.
        await using var lab = await Labs.StartAsync(Pool("""{ "type": "slowReboot", "host": "b", "rebootSeconds": 150 }""",
            extraHost: """, { "name": "c", "memoryMiB": 65536, "rebootSeconds": 20 }"""));
        await using var client = Labs.Client(lab);
        foreach (var name in new[] { "b", "c" })
        {
            var host = (await client.CallAsync("host.get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();
            await client.CallAsync("host.disable", [host]);
            await client.CallAsync("host.reboot", [host]);
        }

        var bUp = await Wait.ForEventAsync(lab, "host.up", "b");
        var audit = lab.AuditJson();
        var bReboot = Audit.T(Audit.Events(audit, "host.reboot", "b").Single());
        var bDown = Audit.T(Audit.Events(audit, "host.down", "b").Single());
        var cDown = Audit.T(Audit.Events(audit, "host.down", "c").Single());
        var cUp = Audit.T(Audit.Events(audit, "host.up", "c").Single());

        Assert.Equal(10, bDown - bReboot, 0.01);
        Assert.Equal(150, Audit.T(bUp) - bDown, 0.01);
        Assert.Equal(20, cUp - cDown, 0.01);
        Assert.Equal(1, Audit.Host(audit, "b")["bootCount"]!.GetValue<int>());
    }

    [Fact]
    public async Task PendingGuidance_HostComesBackDisabledWithTheGuidance_AndEnableIsRefused()
    {
        await using var lab = await Labs.StartAsync(Pool("""{ "type": "pendingGuidance", "host": "b", "guidance": "reboot_host" }""",
            extraHost: """, { "name": "c", "memoryMiB": 65536, "rebootSeconds": 20 }"""));
        await using var client = Labs.Client(lab);
        var b = (await client.CallAsync("host.get_by_name_label", ["b"]))!.AsArray()[0]!.GetValue<string>();
        var c = (await client.CallAsync("host.get_by_name_label", ["c"]))!.AsArray()[0]!.GetValue<string>();
        foreach (var host in new[] { b, c })
        {
            await client.CallAsync("host.disable", [host]);
            await client.CallAsync("host.reboot", [host]);
        }

        await Wait.ForEventAsync(lab, "host.toolstackReady", "b");
        await Wait.ForEventAsync(lab, "host.toolstackReady", "c");

        var record = (JsonObject)(await client.CallAsync("host.get_record", [b]))!;
        Assert.False(record["enabled"]!.GetValue<bool>());
        Assert.Contains("reboot_host", record["pending_guidances"]!.AsArray().Select(g => g!.GetValue<string>()));
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.enable", [b]));
        // The code is singular on the wire (xen-api ocaml/xapi-consts/api_errors.ml host_pending_mandatory_guidances_not_empty).
        Assert.Equal("HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", e.Code);
        Assert.Equal(b, e.Parameters[0]);

        // Without the fault the rebooted host enables itself and its guidance is gone.
        var control = (JsonObject)(await client.CallAsync("host.get_record", [c]))!;
        Assert.True(control["enabled"]!.GetValue<bool>());
        Assert.Empty(control["pending_guidances"]!.AsArray());

        var audit = lab.AuditJson();
        Assert.False(Audit.Host(audit, "b")["enabled"]!.GetValue<bool>());
        Assert.Equal(["reboot_host"], Audit.Host(audit, "b")["pendingGuidances"]!.AsArray().Select(g => g!.GetValue<string>()));
        Assert.False(Audit.Events(audit, "host.toolstackReady", "b").Single()["enabled"]!.GetValue<bool>());
        Assert.Empty(Audit.Events(audit, "host.enable", "b"));
    }

    [Fact]
    public async Task XapiOutage_MasterRefusesConnectionsForTheWindow_ThenAnswersAgain()
    {
        const double At = 40;
        const double Duration = 60;
        await using var lab = await Labs.StartAsync(Pool($$"""{ "type": "xapiOutage", "atSeconds": {{At}}, "durationSeconds": {{Duration}} }"""), 100);
        using var raw = new RawXapi(lab);
        var a = Labs.Address(lab, "a");
        var bAddress = Labs.Address(lab, "b");
        var s = await raw.LoginAsync(a);
        var b = await raw.RefAsync(a, s, "host", "b");

        // Reads are not changes: the clock of the fault starts at the first state-changing call.
        await Wait.UntilSimulatedAsync(lab, At + 5);
        Assert.True(await raw.AnswersAsync(a));
        await raw.CallAsync(a, "host.disable", s, b);
        var firstChange = Audit.T(Audit.Events(lab.AuditJson(), "host.disable", "b").Single());

        double? firstRefusal = null;
        string? memberAnswer = null;
        double? backAt = null;
        await Wait.UntilAsync(async () =>
        {
            var now = Audit.Now(lab.AuditJson());
            try
            {
                await raw.CallAsync(a, "system.listMethods");
                if (firstRefusal is not null)
                {
                    backAt = now;
                }
            }
            catch (HttpRequestException e) when (RawXapi.IsRefused(e))
            {
                if (firstRefusal is null)
                {
                    firstRefusal = now;
                    memberAnswer = (await raw.FailsAsync(bAddress, "session.login_with_password", raw.User, raw.Password)).Code;
                }
            }
            catch (HttpRequestException)
            {
                // A call in flight when the server stopped is cut rather than refused.
            }

            return backAt is not null;
        }, "the master's XAPI to refuse connections and then answer again");

        Assert.True(firstRefusal >= firstChange + At - 0.01, $"refused at {firstRefusal}, before the window opened at {firstChange + At}");
        Assert.True(backAt >= firstChange + At + Duration - 0.01, $"answered at {backAt}, before the window closed at {firstChange + At + Duration}");
        Assert.Equal("HOST_IS_SLAVE", memberAnswer);
        var outage = Audit.Events(lab.AuditJson(), "xapi.outage").Single();
        Assert.Equal(firstChange + At, Audit.T(outage), 0.01);
        Assert.Equal("a", outage["host"]!.GetValue<string>());
        Assert.Equal(firstChange + At + Duration, outage["until"]!.GetValue<double>(), 0.01);
        // The session outlives the outage: the toolstack did not restart.
        Assert.NotNull(await raw.CallAsync(a, "pool.get_all", s));
    }

    private static CloudStackClient CloudStackClientFor(LabRuntime lab, int retries = 0) => new(new CloudStackClientOptions
    {
        // Simulated time: an hour of it passes in seconds at these scales.
        Timeout = TimeSpan.FromHours(1),
        UpdateClusterTimeout = TimeSpan.FromHours(1),
        Endpoint = new Uri(lab.Environment["ROLLREBOOT_CLOUDSTACK_URL"]),
        ApiKey = lab.Environment["ROLLREBOOT_CLOUDSTACK_API_KEY"],
        SecretKey = lab.Environment["ROLLREBOOT_CLOUDSTACK_SECRET_KEY"],
        RetryCount = retries,
        RetryDelay = TimeSpan.FromSeconds(1),
        PollInterval = TimeSpan.FromSeconds(1),
    }, timeProvider: lab.Clock);

    private const string Managed = """ "cloudstack": { "clusterName": "CLUSTER-1" }, """;

    [Fact]
    public async Task CloudStackError_NextTimesCallsOfTheCommandFailWithTheCode_ThenItWorks()
    {
        await using var lab = await Labs.StartAsync(Pool("""
            { "type": "cloudstackError", "command": "listHosts", "times": 2, "errorCode": 530 },
            { "type": "cloudstackError", "command": "updateCluster", "times": 1, "errorCode": 431 }
            """, cloudStack: Managed));
        using var cs = CloudStackClientFor(lab);
        var cluster = Assert.Single(await cs.FindClustersAsync("CLUSTER-1", null));

        var first = await Assert.ThrowsAsync<CloudStackException>(() => cs.ListHostsAsync(cluster.Id));
        var second = await Assert.ThrowsAsync<CloudStackException>(() => cs.ListHostsAsync(cluster.Id));
        Assert.Equal((530, 530), (first.ErrorCode, second.ErrorCode));
        Assert.Equal(["a", "b"], (await cs.ListHostsAsync(cluster.Id)).Select(h => h.Name));

        // The failed updateCluster changed nothing; the next one does.
        var refused = await Assert.ThrowsAsync<CloudStackException>(() => cs.SetManagedStateAsync(cluster.Id, managed: false));
        Assert.Equal(431, refused.ErrorCode);
        Assert.Empty(Audit.Events(lab.AuditJson(), "cloudstack.managedState"));
        Assert.Equal("Managed", lab.AuditJson()["cloudstack"]!["managedState"]!.GetValue<string>());

        Assert.Equal("Unmanaged", await cs.SetManagedStateAsync(cluster.Id, managed: false));
        var audit = lab.AuditJson();
        Assert.Equal(["PrepareUnmanaged", "Unmanaged"], Audit.Events(audit, "cloudstack.managedState").Select(e => e["value"]!.GetValue<string>()));
        Assert.Equal("Unmanaged", audit["cloudstack"]!["managedState"]!.GetValue<string>());
        Assert.Empty(Audit.Violations(audit));
    }

    [Fact]
    public async Task UnmanageFails_UpdateClusterEndsInPrepareUnmanagedError()
    {
        await using var lab = await Labs.StartAsync(Pool("""{ "type": "unmanageFails" }""", cloudStack: Managed), 500);
        using var cs = CloudStackClientFor(lab);
        var cluster = Assert.Single(await cs.FindClustersAsync("CLUSTER-1", null));

        var e = await Assert.ThrowsAsync<CloudStackException>(() => cs.SetManagedStateAsync(cluster.Id, managed: false));

        Assert.Equal(530, e.ErrorCode);
        Assert.Contains("PrepareUnmanagedError", e.Message, StringComparison.Ordinal);
        var audit = lab.AuditJson();
        Assert.Equal(["PrepareUnmanaged", "PrepareUnmanagedError"], Audit.Events(audit, "cloudstack.managedState").Select(x => x["value"]!.GetValue<string>()));
        var cloudstack = audit["cloudstack"]!;
        Assert.Equal("PrepareUnmanagedError", cloudstack["managedState"]!.GetValue<string>());
        Assert.All(cloudstack["hosts"]!.AsArray(), h => Assert.Equal("Up", h!["state"]!.GetValue<string>()));
        Assert.Equal("PrepareUnmanagedError", (await cs.GetClusterAsync(cluster.Id)).ManagedState);
    }

    [Fact]
    public async Task VmStarts_NewVmRunsAtSecondsAfterTheFirstChange()
    {
        const double At = 30;
        await using var lab = await Labs.StartAsync(Pool($$"""{ "type": "vmStarts", "vm": { "name": "i-9-99-VM", "host": "b", "memoryMiB": 2048 }, "atSeconds": {{At}} }"""));
        await using var client = Labs.Client(lab);
        var a = (await client.CallAsync("host.get_by_name_label", ["a"]))!.AsArray()[0]!.GetValue<string>();
        var b = (await client.CallAsync("host.get_by_name_label", ["b"]))!.AsArray()[0]!.GetValue<string>();

        // Nothing changed yet: however long we wait, nobody deploys.
        await Wait.UntilSimulatedAsync(lab, At * 2);
        Assert.Empty((await client.CallAsync("VM.get_by_name_label", ["i-9-99-VM"]))!.AsArray());

        await client.CallAsync("host.disable", [a]);
        var started = await Wait.ForEventAsync(lab, "vm.start", vm: "i-9-99-VM");

        var changedAt = Audit.T(Audit.Events(lab.AuditJson(), "host.disable", "a").Single());
        Assert.Equal(changedAt + At, Audit.T(started), 0.01);
        Assert.Equal("b", started["host"]!.GetValue<string>());
        var vm = Assert.Single((await client.CallAsync("VM.get_by_name_label", ["i-9-99-VM"]))!.AsArray())!.GetValue<string>();
        var record = (JsonObject)(await client.CallAsync("VM.get_record", [vm]))!;
        Assert.Equal("Running", record["power_state"]!.GetValue<string>());
        Assert.Equal(b, record["resident_on"]!.GetValue<string>());
        Assert.Equal(2048L << 20, record["memory_static_max"]!.GetValue<long>());
        Assert.Equal("Running", Audit.Vm(lab.AuditJson(), "i-9-99-VM")["powerState"]!.GetValue<string>());
    }

    [Fact]
    public async Task SessionInvalid_ExactlyTimesCallsFail_ThenTheLabAnswers()
    {
        await using var lab = await Labs.StartAsync(Pool("""{ "type": "sessionInvalid", "times": 3, "probability": 1 }"""));
        using var raw = new RawXapi(lab);
        var a = Labs.Address(lab, "a");

        var failures = 0;
        for (var call = 0; call < 8; call++)
        {
            var s = await raw.LoginAsync(a);
            try
            {
                await raw.CallAsync(a, "pool.get_all", s);
            }
            catch (RawXapiError e)
            {
                Assert.Equal("SESSION_INVALID", e.Code);
                Assert.Equal([s], e.Parameters);
                // The session is gone for good, as when the toolstack restarts.
                Assert.Equal("SESSION_INVALID", (await raw.FailsAsync(a, "pool.get_all", s)).Code);
                failures++;
            }
        }

        Assert.Equal(3, failures);
    }

    [Fact]
    public async Task SessionInvalid_ClientLogsInAgain_AndTheRefusedCallRunsOnce()
    {
        await using var lab = await Labs.StartAsync(Pool("""{ "type": "sessionInvalid", "times": 1, "probability": 1 }"""));
        await using var client = Labs.Client(lab);
        await client.LoginAsync();
        var before = client.CallCount;

        // The first session call is refused before it runs; the client logs in again and repeats it.
        var hosts = (await client.CallAsync("host.get_all", []))!.AsArray();
        Assert.Equal(3, client.CallCount - before); // the refused call, the new login, the call again
        Assert.Equal(2, hosts.Count);
        var b = (await client.CallAsync("host.get_by_name_label", ["b"]))!.AsArray()[0]!.GetValue<string>();
        await client.CallAsync("host.disable", [b]);

        var audit = lab.AuditJson();
        Assert.Single(Audit.Events(audit, "host.disable", "b"));
        Assert.False(Audit.Host(audit, "b")["enabled"]!.GetValue<bool>());
        var sessions = (JsonObject)(await client.CallAsync("session.get_all_records", []))!;
        Assert.Single(sessions, kv => kv.Value!["originator"]!.GetValue<string>() == "rollreboot");
    }

    [Fact]
    public async Task ConnectionReset_ReadsAreRepeated_AndAChangeRunsThoughItsAnswerIsLost()
    {
        // Random resets (seeded, so every run is the same): reads and logins are repeated by the client; a change is
        // not, and the audit shows it ran all the same.
        await using var lab = await Labs.StartAsync(Pool("""{ "type": "connectionReset", "times": 4, "probability": 0.3, "seed": 11 }"""));
        await using var client = Labs.Client(lab);
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();

        string? lost = null;
        for (var i = 0; i < 60 && lost is null; i++)
        {
            var key = "rollreboot-test-" + i;
            try
            {
                await client.CallAsync("pool.add_to_other_config", [pool, key, "v"]);
            }
            catch (XapiException e) when (e.IsUnreachable)
            {
                lost = key;
            }
        }

        Assert.NotNull(lost);
        var audit = lab.AuditJson();
        Assert.Single(Audit.Events(audit, "pool.otherConfig.add"), e => e["key"]!.GetValue<string>() == lost);
        Assert.Equal("v", audit["pool"]!["otherConfig"]![lost]!.GetValue<string>());
        var otherConfig = (JsonObject)(await client.CallAsync("pool.get_other_config", [pool]))!;
        Assert.Equal("v", otherConfig[lost]!.GetValue<string>());
        // Which is why a change is never repeated blindly.
        Assert.Equal("MAP_DUPLICATE_KEY", (await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("pool.add_to_other_config", [pool, lost, "v"]))).Code);
    }
}
