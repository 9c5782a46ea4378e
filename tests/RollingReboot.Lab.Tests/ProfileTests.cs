using System.Text.Json.Nodes;
using RollingReboot.Lab.Scenario;
using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// Version profiles (issue 15 section 1) and the patch workflow (section 2), as xen-api's sources have them: each test
/// names the release and file of xapi-project/xen-api (paths under ocaml/) that defines what it pins.
/// </summary>
public class ProfileTests
{
    private static string Pool(string xapiVersion, string hosts = "", string vms = "", string pool = "", string brand = "") => $$"""
        { "pool": { "xapiVersion": "{{xapiVersion}}", "toolstackStartSeconds": 2 {{(brand.Length > 0 ? $", \"productBrand\": \"{brand}\"" : "")}} {{pool}} },
          "migration": { "setupSeconds": 4, "streamMBps": 1000, "hostLinkMBps": 1000 },
          "hosts": [ { "name": "a", "memoryMiB": 65536, "rebootSeconds": 20, "pendingReboot": false }, { "name": "b", "memoryMiB": 65536, "rebootSeconds": 20, "pendingReboot": false }{{hosts}} ],
          "vms": [ {{vms}} ] }
        """;

    private static async Task<string> HostRefAsync(XapiClient client, string name) =>
        (await client.CallAsync("host.get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();

    private static async Task<JsonObject> RecordAsync(XapiClient client, string hostRef) =>
        (JsonObject)(await client.CallAsync("host.get_record", [hostRef]))!;

    private static IReadOnlyList<string> Strings(JsonNode? node) => node!.AsArray().Select(x => x!.GetValue<string>()).ToList();

    [Theory]
    // xcp-ng-rpms/xapi branch 8.2: 1.249.41; xcp-ng/branding-xcp-ng branch 8.2: 8.2.1 / 3.2.1. Before v22.9.0 software_version
    // has no xapi_build and "xapi" is the constant 1.20 (v1.249.41 util/xapi_version.ml); API 2.15 (idl/datamodel_common.ml).
    [InlineData("xcp-ng-8.2", "XCP-ng", "8.2.1", "3.2.1", "1.20", null, 15)]
    [InlineData("xcp-ng-8.3", "XCP-ng", "8.3.0", "3.4.0", "24.19", "24.19.2", 21)]
    [InlineData("xenserver-8", "XenServer", "8.4.0", "3.4.0", "26.1", "26.1.4", 21)]
    public async Task SoftwareVersion_IsTheProfiles(string profile, string brand, string product, string platform, string xapi, string? build, long apiMinor)
    {
        await using var lab = await Labs.StartAsync(Pool(profile));
        await using var client = Labs.Client(lab);
        var record = await RecordAsync(client, await HostRefAsync(client, "a"));
        var sv = record["software_version"]!.AsObject();

        Assert.Equal(brand, sv["product_brand"]!.GetValue<string>());
        Assert.Equal(product, sv["product_version"]!.GetValue<string>());
        Assert.Equal(platform, sv["platform_version"]!.GetValue<string>());
        Assert.Equal(xapi, sv["xapi"]!.GetValue<string>());
        Assert.Equal(build, sv["xapi_build"]?.GetValue<string>());
        Assert.Equal(2, record["API_version_major"]!.GetValue<long>());
        Assert.Equal(apiMinor, record["API_version_minor"]!.GetValue<long>());
    }

    [Fact]
    public async Task XcpNg82_HostRecordHasNoGuidanceFields_Xapi2410HasAllThree()
    {
        // pending_guidances: idl/datamodel_host.ml, published 1.303.0; _recommended and _full: commit ead6edc1, v24.10.0.
        await using (var lab = await Labs.StartAsync(Pool("xcp-ng-8.2")))
        {
            await using var client = Labs.Client(lab);
            var record = await RecordAsync(client, await HostRefAsync(client, "a"));
            Assert.False(record.ContainsKey("pending_guidances"));
            Assert.False(record.ContainsKey("pending_guidances_recommended"));
            Assert.False(record.ContainsKey("pending_guidances_full"));
        }

        await using (var lab = await Labs.StartAsync(Pool("24.3.0", brand: "XenServer")))
        {
            await using var client = Labs.Client(lab);
            var record = await RecordAsync(client, await HostRefAsync(client, "a"));
            Assert.True(record.ContainsKey("pending_guidances"));
            Assert.False(record.ContainsKey("pending_guidances_recommended"));
        }

        await using (var lab = await Labs.StartAsync(Pool("xcp-ng-8.3")))
        {
            await using var client = Labs.Client(lab);
            var record = await RecordAsync(client, await HostRefAsync(client, "a"));
            Assert.Empty(record["pending_guidances"]!.AsArray());
            Assert.Empty(record["pending_guidances_recommended"]!.AsArray());
            Assert.Empty(record["pending_guidances_full"]!.AsArray());
        }
    }

    [Theory]
    // v1.249.41 xapi/xapi_host.ml evacuate: one synchronous VM.pool_migrate after the other; commit bab83d9d (v22.24.0):
    // batches of xapi.conf evacuation-batch-size (default 10, xapi/xapi_globs.ml).
    [InlineData("xcp-ng-8.2", false)]
    [InlineData("xcp-ng-8.3", true)]
    public async Task HostEvacuate_OneVmAtATimeOnXcpNg82_InABatchLater(string profile, bool parallel)
    {
        await using var lab = await Labs.StartAsync(Pool(profile, vms: """
            { "name": "v1", "host": "b", "memoryMiB": 1024 }, { "name": "v2", "host": "b", "memoryMiB": 1024 }, { "name": "v3", "host": "b", "memoryMiB": 1024 }
            """));
        await using var client = Labs.Client(lab);
        var b = await HostRefAsync(client, "b");
        await client.CallAsync("host.disable", [b]);

        await client.CallAsync("host.evacuate", [b]);

        var audit = lab.AuditJson();
        var starts = Audit.Events(audit, "migration.start").Select(Audit.T).ToList();
        var ends = Audit.Events(audit, "migration.end").Select(Audit.T).ToList();
        Assert.Equal(3, starts.Count);
        Assert.All(Audit.Events(audit, "migration.end"), e => Assert.True(e["ok"]!.GetValue<bool>()));
        if (parallel)
        {
            Assert.Equal(starts[0], starts[2], 0.01);
        }
        else
        {
            Assert.True(starts[1] >= ends[0] - 0.01 && starts[2] >= ends[1] - 0.01, $"starts {string.Join(",", starts)}, ends {string.Join(",", ends)}");
        }

        Assert.Equal(parallel ? 10 : 1, Audit.Events(audit, "host.evacuate", "b").Single()["batch"]!.GetValue<int>());
    }

    [Theory]
    // idl/datamodel_host.ml disable: auto_enable "Changed, 25.31.0" (absent from v25.30.0). xapi/xapi_host.ml disable writes
    // host_auto_enable=false, xapi/xapi_host_helpers.ml consider_enabling_host then leaves the host disabled after its reboot.
    [InlineData("xcp-ng-8.2", false)]
    [InlineData("xcp-ng-8.3", false)]
    [InlineData("25.30.0", false)]
    [InlineData("25.31.0", true)]
    [InlineData("xenserver-8", true)]
    public async Task HostDisable_AutoEnableFalse_From25_31_KeepsTheHostDisabledAcrossItsReboot(string version, bool known)
    {
        await using var lab = await Labs.StartAsync(Pool(version, brand: char.IsAsciiDigit(version[0]) ? "XenServer" : ""));
        await using var client = Labs.Client(lab);
        var b = await HostRefAsync(client, "b");
        if (!known)
        {
            var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.disable", [b, false]));
            Assert.Equal("MESSAGE_PARAMETER_COUNT_MISMATCH", e.Code);
            await client.CallAsync("host.disable", [b]);
        }
        else
        {
            await client.CallAsync("host.disable", [b, false]);
        }

        await client.CallAsync("host.reboot", [b]);
        await Wait.ForEventAsync(lab, "host.toolstackReady", "b");

        Assert.Equal(!known, (await RecordAsync(client, b))["enabled"]!.GetValue<bool>());
        if (known)
        {
            // An explicit host.enable puts it back (and host_auto_enable=true).
            await client.CallAsync("host.enable", [b]);
            Assert.True((await RecordAsync(client, b))["enabled"]!.GetValue<bool>());
        }
    }

    private const string K1Repository =
        """ "updates": { "hash": "hash-1", "list": [ { "id": "K1", "rpms": ["kernel-4.19.19-8.0.38.xs8.x86_64"], "guidance": { "mandatory": ["RebootHost"] } } ] } """;

    [Fact]
    public async Task XenServer8_ApplyUpdates_RefusesWithHa_DisablesTheHost_LeavesRebootHost_WhichOnlyAReboot_Clears()
    {
        // xapi/xapi_host.ml apply_updates, xapi/repository.ml apply_updates, xapi/repository_helpers.ml (v24.10.0 on).
        // The repository has K1 (RebootHost), pending on b; its hash is "hash-1" (pool.updates.hash).
        var scenario = Pool("xenserver-8", vms: """{ "name": "v1", "host": "b", "memoryMiB": 1024 }""",
            pool: """, "ha": { "enabled": true, "heartbeatSr": "nfs-primary" }""" + ", " + K1Repository)
            .Replace("""{ "name": "b", "memoryMiB": 65536, "rebootSeconds": 20, "pendingReboot": false }""",
                """{ "name": "b", "memoryMiB": 65536, "rebootSeconds": 20, "pendingReboot": false, "updates": ["K1"] }""", StringComparison.Ordinal);
        await using var lab = await Labs.StartAsync(scenario);
        await using var client = Labs.Client(lab);
        var a = await HostRefAsync(client, "a");
        var b = await HostRefAsync(client, "b");
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [b, "hash-1"]));
        Assert.Equal("HA_IS_ENABLED", e.Code);
        Assert.True((await RecordAsync(client, b))["enabled"]!.GetValue<bool>());
        await client.CallAsync("pool.disable_ha", []);
        Assert.Equal("hash-1", (await client.CallAsync("pool.sync_updates", [pool, false]))!.GetValue<string>());

        // A host still running a VM is refused, but disabled first: the refusal leaves it so.
        e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [b, "hash-1"]));
        Assert.Equal(("HOST_EVACUATION_IS_REQUIRED", b), (e.Code, e.Parameters[0]));
        Assert.False((await RecordAsync(client, b))["enabled"]!.GetValue<bool>());
        await client.CallAsync("host.evacuate", [b]);

        Assert.Empty((await client.CallAsync("host.apply_updates", [b, "hash-1"]))!.AsArray());
        var record = await RecordAsync(client, b);
        Assert.False(record["enabled"]!.GetValue<bool>());
        Assert.Equal(["reboot_host"], Strings(record["pending_guidances"]));

        // host.enable refuses it (reboot_host included), with [host]; so does a second apply_updates.
        e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.enable", [b]));
        Assert.Equal(("HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", b), (e.Code, e.Parameters[0]));
        e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [b, "hash-1"]));
        Assert.Equal(["HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", b], [e.Code, .. e.Parameters]);

        // A toolstack restart does not apply it: the host stays disabled, reboot_host pending.
        await client.CallAsync("host.restart_agent", [b]);
        await Wait.ForEventAsync(lab, "host.toolstackReady", "b");
        record = await RecordAsync(client, b);
        Assert.False(record["enabled"]!.GetValue<bool>());
        Assert.Equal(["reboot_host"], Strings(record["pending_guidances"]));
        await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.enable", [b]));

        // A reboot does, and xapi enables the host itself.
        await client.CallAsync("host.reboot", [b]);
        await Wait.ForEventAsync(lab, "host.toolstackReady", "b", count: 2);
        record = await RecordAsync(client, b);
        Assert.True(record["enabled"]!.GetValue<bool>());
        Assert.Empty(record["pending_guidances"]!.AsArray());
        Assert.Empty(Audit.Events(lab.AuditJson(), "host.enable", "b"));
        Assert.True((await RecordAsync(client, a))["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task RestartToolstackGuidance_AToolstackRestartAppliesIt_AndXapiEnablesTheHost()
    {
        // xapi/dbsync_slave.ml remove_pending_guidances: restart_toolstack at every start; consider_enabling_host then enables.
        await using var lab = await Labs.StartAsync(Pool("xenserver-8", hosts: """, { "name": "c", "memoryMiB": 65536, "guidances": { "mandatory": ["restart_toolstack"] } }"""));
        await using var client = Labs.Client(lab);
        var c = await HostRefAsync(client, "c");
        var record = await RecordAsync(client, c);
        Assert.False(record["enabled"]!.GetValue<bool>());
        Assert.Equal("HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", (await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.enable", [c]))).Code);

        await client.CallAsync("host.restart_agent", [c]);
        await Wait.ForEventAsync(lab, "host.toolstackReady", "c");

        record = await RecordAsync(client, c);
        Assert.True(record["enabled"]!.GetValue<bool>());
        Assert.Empty(record["pending_guidances"]!.AsArray());
    }

    [Fact]
    public async Task ApplyUpdates_OnXcpNgThereIsNoRepository_AndOn1249ThereIsNoSuchCall()
    {
        await using (var lab = await Labs.StartAsync(Pool("xcp-ng-8.3")))
        {
            await using var client = Labs.Client(lab);
            var b = await HostRefAsync(client, "b");
            var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [b, "hash"]));
            Assert.Equal("NO_REPOSITORY_ENABLED", e.Code);
            // apply_updates disables the host before it looks for the repository (xapi/xapi_host.ml, v24.10.0+).
            Assert.False((await RecordAsync(client, b))["enabled"]!.GetValue<bool>());
        }

        await using (var lab = await Labs.StartAsync(Pool("xcp-ng-8.2")))
        {
            await using var client = Labs.Client(lab);
            var b = await HostRefAsync(client, "b");
            // host.apply_updates: idl/datamodel_host.ml, published 1.301.0.
            Assert.Equal("MESSAGE_METHOD_UNKNOWN", (await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [b, "hash"]))).Code);
        }
    }

    [Fact]
    public async Task BeforeXapi2410_AGuidanceDoesNotHoldAHostDisabled()
    {
        // 24.3.0: pending_guidances exists (1.303.0) but host.enable does not check it (assert_safe_to_reenable before commit 4c036152).
        await using var lab = await Labs.StartAsync(Pool("24.3.0", brand: "XenServer", hosts: """, { "name": "c", "memoryMiB": 65536 }"""));
        await using var client = Labs.Client(lab);
        var c = await HostRefAsync(client, "c");
        var record = await RecordAsync(client, c);
        Assert.True(record["enabled"]!.GetValue<bool>());
        Assert.Equal(["reboot_host"], Strings(record["pending_guidances"]));

        await client.CallAsync("host.disable", [c]);
        await client.CallAsync("host.enable", [c]);
        Assert.True((await RecordAsync(client, c))["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task PendingReboot_IsTheProductsOwnSignal()
    {
        const string Patched = """, { "name": "c", "memoryMiB": 65536 }""";
        // XCP-ng: other_config.rpm_patch_installation_time after boot_time (xo-server src/xapi/mixins/patching.mjs), enabled.
        await using (var lab = await Labs.StartAsync(Pool("xcp-ng-8.2", hosts: Patched)))
        {
            await using var client = Labs.Client(lab);
            var record = await RecordAsync(client, await HostRefAsync(client, "c"));
            var config = record["other_config"]!.AsObject();
            Assert.True(double.Parse(config["rpm_patch_installation_time"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture)
                > double.Parse(config["boot_time"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(record["enabled"]!.GetValue<bool>());
            Assert.Empty(record["updates_requiring_reboot"]!.AsArray());
            Assert.False((await RecordAsync(client, await HostRefAsync(client, "a")))["other_config"]!.AsObject().ContainsKey("rpm_patch_installation_time"));
        }

        // XenServer 8: the state host.apply_updates leaves.
        await using (var lab = await Labs.StartAsync(Pool("xenserver-8", hosts: Patched)))
        {
            await using var client = Labs.Client(lab);
            var record = await RecordAsync(client, await HostRefAsync(client, "c"));
            Assert.False(record["enabled"]!.GetValue<bool>());
            Assert.Equal(["reboot_host"], Strings(record["pending_guidances"]));
            Assert.False(record["other_config"]!.AsObject().ContainsKey("rpm_patch_installation_time"));
        }

        // XenServer before pending_guidances (1.303.0): the legacy pool_update list.
        await using (var lab = await Labs.StartAsync(Pool("1.250.0", brand: "XenServer", hosts: Patched)))
        {
            await using var client = Labs.Client(lab);
            var record = await RecordAsync(client, await HostRefAsync(client, "c"));
            Assert.True(record["enabled"]!.GetValue<bool>());
            Assert.Single(record["updates_requiring_reboot"]!.AsArray());
        }
    }

    [Fact]
    public async Task ARebootClearsTheLivepatchFailureGuidancesFromEveryList()
    {
        // xapi/dbsync_slave.ml remove_pending_guidances at a boot: reboot_host and the three livepatch failures, all three lists.
        await using var lab = await Labs.StartAsync(Pool("xenserver-8", hosts: """
            , { "name": "c", "memoryMiB": 65536, "pendingReboot": false,
                "guidances": { "recommended": ["reboot_host_on_kernel_livepatch_failure"], "full": ["reboot_host_on_xen_livepatch_failure"] } }
            """));
        await using var client = Labs.Client(lab);
        var c = await HostRefAsync(client, "c");
        var record = await RecordAsync(client, c);
        Assert.True(record["enabled"]!.GetValue<bool>());
        Assert.Equal(["reboot_host_on_kernel_livepatch_failure"], Strings(record["pending_guidances_recommended"]));

        await client.CallAsync("host.disable", [c]);
        await client.CallAsync("host.reboot", [c]);
        await Wait.ForEventAsync(lab, "host.toolstackReady", "c");

        record = await RecordAsync(client, c);
        Assert.True(record["enabled"]!.GetValue<bool>());
        Assert.Empty(record["pending_guidances_recommended"]!.AsArray());
        Assert.Empty(record["pending_guidances_full"]!.AsArray());
    }

    [Theory]
    [InlineData("""{ "pool": { "xapiVersion": "xcp-ng-9" }, "hosts": [ { "name": "a" } ] }""", "pool.xapiVersion xcp-ng-9 is neither a xapi version")]
    [InlineData("""{ "pool": { "xapiVersion": "xenserver-8", "productBrand": "XCP-ng" }, "hosts": [ { "name": "a" } ] }""", "pool.xapiVersion xenserver-8 is XenServer, but pool.productBrand says XCP-ng")]
    [InlineData("""{ "pool": { "xapiVersion": "xenserver-8" }, "hosts": [ { "name": "a", "enabled": true } ] }""", "host a: enabled with mandatory guidance pending cannot happen from xapi 24.10.0")]
    [InlineData("""{ "pool": { "xapiVersion": "xenserver-8" }, "hosts": [ { "name": "a" } ], "vms": [ { "name": "v", "host": "a" } ] }""", "host a: mandatory guidance reboot_host (what pendingReboot means on xenserver-8")]
    [InlineData("""{ "pool": { "xapiVersion": "xcp-ng-8.2" }, "hosts": [ { "name": "a", "guidances": { "recommended": ["reboot_host"] } } ] }""", "host a: guidances.recommended and .full exist from xapi 24.10.0")]
    [InlineData("""{ "pool": { "xapiVersion": "xcp-ng-8.2" }, "hosts": [ { "name": "a" } ], "faults": [ { "type": "pendingGuidance", "host": "a" } ] }""", "faults[0] (pendingGuidance): a pending guidance keeps a host disabled (host.enable refuses it) only from xapi 24.10.0")]
    [InlineData("""{ "hosts": [ { "name": "a", "guidances": { "mandatory": ["restart_vm"] } } ] }""", "host a: guidances.mandatory: restart_vm is not a host guidance")]
    public void Scenario_StatesTheProfileCannotHave_AreRefusedWithTheReason(string json, string message)
    {
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(json));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Scenario_EnabledLeftOut_IsResolvedPerProfile()
    {
        var xs8 = ScenarioLoader.Parse("""{ "pool": { "xapiVersion": "xenserver-8" }, "hosts": [ { "name": "a" }, { "name": "b", "pendingReboot": false } ] }""");
        Assert.Equal([false, true], xs8.Hosts.Select(h => h.Enabled));
        var xcp = ScenarioLoader.Parse("""{ "pool": { "xapiVersion": "xcp-ng-8.3" }, "hosts": [ { "name": "a" } ] }""");
        Assert.True(xcp.Hosts[0].Enabled);
    }
}
