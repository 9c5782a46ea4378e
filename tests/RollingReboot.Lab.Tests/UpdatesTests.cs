using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// Update repositories per profile (issue 20): XenServer 8's pool.sync_updates, GET /updates and host.apply_updates
/// (xapi-project/xen-api ocaml/xapi/repository.ml, repository_helpers.ml, xapi_pool.ml, xapi_host.ml), and XCP-ng's
/// updater.py plugin (xcp-ng/xcp-ng-xapi-plugins SOURCES/etc/xapi.d/plugins/updater.py, xcpngutils), over the lab's wire.
/// </summary>
public class UpdatesTests
{
    private const string Xs8File = "xs8-rolling-update.json";
    private const string XcpNgFile = "xcp-ng-83-rolling-update.json";

    /// <summary>A scenario file of tests/scenarios, HA off (host.apply_updates refuses while it is on) and the faults given.</summary>
    private static string FromFile(string file, string faults = "", bool ha = false, bool syncedAtStart = false)
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(ScenarioLoaderTests.ScenariosDirectory(), file)))!.AsObject();
        if (root["pool"]!["updates"] is JsonObject updates)
        {
            // The tests start from a repository never synced, unless they ask for one synced before the lab started.
            updates["syncedAtStart"] = syncedAtStart;
        }

        if (!ha)
        {
            root["pool"]!.AsObject().Remove("ha");
        }

        root["pool"]!["toolstackStartSeconds"] = 2;
        if (faults.Length > 0)
        {
            root["faults"] = JsonNode.Parse("[" + faults + "]");
        }

        return root.ToJsonString();
    }

    private static async Task<string> RefAsync(XapiClient client, string cls, string name) =>
        (await client.CallAsync(cls + ".get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();

    private static async Task<JsonObject> RecordAsync(XapiClient client, string cls, string r) =>
        (JsonObject)(await client.CallAsync(cls + ".get_record", [r]))!;

    private static List<string> Strings(JsonNode? node) => node!.AsArray().Select(x => x!.GetValue<string>()).ToList();

    private static async Task<string> SyncAsync(XapiClient client)
    {
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();
        return (await client.CallAsync("pool.sync_updates", [pool, false]))!.GetValue<string>();
    }

    private static async Task<(HttpStatusCode Status, string? MediaType, string? Challenge, string Body)> GetUpdatesAsync(LabRuntime lab, string query, AuthenticationHeaderValue? auth = null)
    {
        using var http = Labs.PinnedHttp(lab);
        using var request = new HttpRequestMessage(HttpMethod.Get, Labs.Url(lab, Labs.Address(lab, "xs1"), "/updates" + query));
        request.Headers.Authorization = auth;
        using var response = await http.SendAsync(request);
        return (response.StatusCode, response.Content.Headers.ContentType?.MediaType, response.Headers.WwwAuthenticate.FirstOrDefault()?.Scheme,
            await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task SyncUpdates_ReturnsTheRepositoryHash_ApplyWantsThatHashAndNoOther()
    {
        await using var lab = await Labs.StartAsync(FromFile(Xs8File));
        await using var client = Labs.Client(lab);
        var xs4 = await RefAsync(client, "host", "xs4");
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();

        // Db.Repository.hash is "" until a sync: any hash, "" included, is a mismatch (repository.ml apply_updates).
        foreach (var hash in new[] { "", "0123abcd" })
        {
            var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [xs4, hash]));
            Assert.Equal(("UPDATEINFO_HASH_MISMATCH", 0), (e.Code, e.Parameters.Count));
        }

        // force, then token, token_id, username, password all default: 2 to 6 parameters after the session.
        var synced = (await client.CallAsync("pool.sync_updates", [pool, false]))!.GetValue<string>();
        Assert.Matches("^[0-9a-f]{64}$", synced);
        Assert.Equal(synced, (await client.CallAsync("pool.sync_updates", [pool, true, "", "", "", ""]))!.GetValue<string>());
        Assert.Equal(synced, Audit.Events(lab.AuditJson(), "pool.syncUpdates")[0]["hash"]!.GetValue<string>());

        var wrong = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [xs4, synced[..^1] + "0"]));
        Assert.Equal("UPDATEINFO_HASH_MISMATCH", wrong.Code);

        // The sync says which host has nothing to apply (repository.ml set_available_updates_no_lock).
        Assert.Equal("yes", (await RecordAsync(client, "host", xs4))["latest_synced_updates_applied"]!.GetValue<string>());
        Assert.Equal("no", (await RecordAsync(client, "host", await RefAsync(client, "host", "xs1")))["latest_synced_updates_applied"]!.GetValue<string>());
    }

    [Fact]
    public async Task SyncedAtStart_GetUpdatesAnswersAtOnce_AndApplyTakesThatHash()
    {
        await using var lab = await Labs.StartAsync(FromFile(Xs8File, syncedAtStart: true));
        using var raw = new RawXapi(lab);
        var session = await raw.LoginAsync(Labs.Address(lab, "xs1"));

        var (status, _, _, body) = await GetUpdatesAsync(lab, "?session_id=" + session);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(string.IsNullOrEmpty(JsonNode.Parse(body)!["hash"]!.GetValue<string>()));
    }

    [Fact]
    public async Task GetUpdates_HasTheFieldsOfGetPoolUpdatesInJson_AndHostRefsFilters()
    {
        await using var lab = await Labs.StartAsync(FromFile(Xs8File));
        await using var client = Labs.Client(lab);
        using var raw = new RawXapi(lab);
        var session = await raw.LoginAsync(Labs.Address(lab, "xs1"));

        // Nothing synced: the pool repository's metadata is missing, GET_UPDATES_FAILED, a 500.
        Assert.Equal(HttpStatusCode.InternalServerError, (await GetUpdatesAsync(lab, "?session_id=" + session)).Status);
        var hash = await SyncAsync(client);

        var (status, mediaType, _, body) = await GetUpdatesAsync(lab, "?session_id=" + session);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("application/json", mediaType);
        var json = JsonNode.Parse(body)!.AsObject();
        Assert.Equal(["hosts", "updates", "hash"], json.Select(kv => kv.Key));
        Assert.Equal(hash, json["hash"]!.GetValue<string>());
        var hosts = json["hosts"]!.AsArray().Select(h => h!.AsObject()).ToList();
        Assert.Equal(5, hosts.Count);
        Assert.All(hosts, h => Assert.Equal(["ref", "guidance", "RPMS", "updates", "livepatches"], h.Select(kv => kv.Key)));
        Assert.All(hosts, h => Assert.Equal(["mandatory", "recommended", "full"], h["guidance"]!.AsObject().Select(kv => kv.Key)));

        var xs1 = await RefAsync(client, "host", "xs1");
        var xs3 = await RefAsync(client, "host", "xs3");
        var first = hosts.Single(h => h["ref"]!.GetValue<string>() == xs1);
        // RebootHost covers RestartToolstack (repository_helpers.ml GuidanceSet.precedences).
        Assert.Equal(["RebootHost"], Strings(first["guidance"]!["mandatory"]));
        Assert.Equal(["XS84E001", "XS84E002"], Strings(first["updates"]));
        Assert.Contains("kernel-4.19.19-8.0.38.xs8.x86_64.rpm", Strings(first["RPMS"]));
        var third = hosts.Single(h => h["ref"]!.GetValue<string>() == xs3);
        Assert.Empty(third["guidance"]!["mandatory"]!.AsArray());
        // The livepatch guidance (none) replaces the covered update's recommended RebootHost.
        Assert.Empty(third["guidance"]!["recommended"]!.AsArray());
        Assert.Equal("kernel", third["livepatches"]![0]!["component"]!.GetValue<string>());

        var updates = json["updates"]!.AsArray().Select(u => u!.AsObject()).ToList();
        Assert.Equal(["XS84E001", "XS84E002", "XS84E003", "XS84E004"], updates.Select(u => u["id"]!.GetValue<string>()));
        Assert.All(updates, u => Assert.Equal(
            ["id", "summary", "description", "special-info", "URL", "type", "issued", "severity", "livepatches", "guidance", "title"], u.Select(kv => kv.Key)));
        Assert.Equal(["mandatory", "recommended", "full", "livepatch"], updates[0]["guidance"]!.AsObject().Select(kv => kv.Key));

        // host_refs=ref1;ref2: only those hosts and their updates; a ref that is no host is a 400.
        var filtered = JsonNode.Parse((await GetUpdatesAsync(lab, $"?session_id={session}&host_refs={xs3};{await RefAsync(client, "host", "xs4")}")).Body)!;
        Assert.Equal(2, filtered["hosts"]!.AsArray().Count);
        Assert.Equal(["XS84E003"], filtered["updates"]!.AsArray().Select(u => u!["id"]!.GetValue<string>()));
        Assert.Equal(HttpStatusCode.BadRequest, (await GetUpdatesAsync(lab, $"?session_id={session}&host_refs={xs3};OpaqueRef:nope")).Status);

        // No credentials: 401 with a Basic realm; Basic auth works as the other handlers take it.
        var (noAuth, _, challenge, _) = await GetUpdatesAsync(lab, "");
        Assert.Equal(HttpStatusCode.Unauthorized, noAuth);
        Assert.Equal("Basic", challenge);
        var basic = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(raw.User + ":" + raw.Password)));
        Assert.Equal(HttpStatusCode.OK, (await GetUpdatesAsync(lab, "", basic)).Status);
    }

    [Fact]
    public async Task ApplyUpdates_RebootUpdateWithResidentVms_IsEvacuationRequired_TheHostIsLeftDisabled()
    {
        await using var lab = await Labs.StartAsync(FromFile(Xs8File));
        await using var client = Labs.Client(lab);
        var hash = await SyncAsync(client);
        var xs5 = await RefAsync(client, "host", "xs5");

        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [xs5, hash]));
        Assert.Equal(["HOST_EVACUATION_IS_REQUIRED", xs5], [e.Code, .. e.Parameters]);
        Assert.False((await RecordAsync(client, "host", xs5))["enabled"]!.GetValue<bool>());
        Assert.Equal(["XS84E001"], Strings(Audit.Host(lab.AuditJson(), "xs5")["updatesPending"]));
    }

    [Fact]
    public async Task ApplyUpdates_EmptyDisabledHost_TakesApplySeconds_AsATask_ThenHoldsTheReducedGuidance()
    {
        // A slower clock so that the apply's 90 simulated seconds leave room to look at it while it runs.
        await using var lab = await Labs.StartAsync(FromFile(Xs8File), timeScale: 20);
        await using var client = Labs.Client(lab);
        using var raw = new RawXapi(lab);
        var master = Labs.Address(lab, "xs1");
        var session = await raw.LoginAsync(master);
        var hash = await SyncAsync(client);
        var xs1 = await RefAsync(client, "host", "xs1");
        await client.CallAsync("host.evacuate", [xs1]);

        var task = (await raw.CallAsync(master, "Async.host.apply_updates", session, xs1, hash))!.GetValue<string>();
        var running = await RecordAsync(client, "host", xs1);
        Assert.Equal(["apply_updates"], running["current_operations"]!.AsObject().Select(kv => kv.Value!.GetValue<string>()));
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();
        var xs4 = await RefAsync(client, "host", "xs4");
        var busy = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [xs4, hash]));
        Assert.Equal("APPLY_UPDATES_IN_PROGRESS", busy.Code);
        Assert.Contains("apply_updates", (await RecordAsync(client, "pool", pool))["current_operations"]!.AsObject().Select(kv => kv.Value!.GetValue<string>()));

        var done = await raw.WaitTaskAsync(master, session, task);
        Assert.Equal("success", done["status"]!.GetValue<string>());
        var audit = lab.AuditJson();
        var start = Audit.Events(audit, "host.applyUpdates.start", "xs1").Single();
        var end = Audit.Events(audit, "host.applyUpdates", "xs1").Single();
        Assert.Equal(90, Audit.T(end) - Audit.T(start), 3);
        Assert.Equal(["XS84E001", "XS84E002"], Strings(end["updates"]));

        var record = await RecordAsync(client, "host", xs1);
        Assert.False(record["enabled"]!.GetValue<bool>());
        Assert.Equal(["reboot_host"], Strings(record["pending_guidances"]));
        Assert.Empty(record["current_operations"]!.AsObject());
        Assert.Equal(hash, record["last_update_hash"]!.GetValue<string>());
        Assert.Equal("yes", record["latest_synced_updates_applied"]!.GetValue<string>());
        Assert.Equal(["XS84E001", "XS84E002"], Strings(Audit.Host(audit, "xs1")["updatesInstalled"]));
        Assert.Empty(Audit.Host(audit, "xs1")["updatesPending"]!.AsArray());

        // A reboot clears reboot_host and xapi enables the host itself; nothing is left to apply.
        await client.CallAsync("host.reboot", [xs1]);
        await Wait.ForEventAsync(lab, "host.toolstackReady", "xs1");
        var after = await Labs.Client(lab).CallAsync("host.get_record", [xs1]);
        Assert.True(after!["enabled"]!.GetValue<bool>());
        Assert.Empty(after["pending_guidances"]!.AsArray());
    }

    [Fact]
    public async Task ApplyUpdates_ToolstackOnly_RunsBesideItsVms_DeviceModelGoesToTheHvmGuests_RestartAgentClearsTheToolstack()
    {
        await using var lab = await Labs.StartAsync(FromFile(Xs8File));
        await using var client = Labs.Client(lab);
        var hash = await SyncAsync(client);
        var xs2 = await RefAsync(client, "host", "xs2");

        Assert.Empty((await client.CallAsync("host.apply_updates", [xs2, hash]))!.AsArray());
        var record = await RecordAsync(client, "host", xs2);
        Assert.Equal(["restart_toolstack"], Strings(record["pending_guidances"]));
        Assert.Empty(record["pending_guidances_recommended"]!.AsArray());
        // xs2 runs i-6-101-VM (PV) and generated HVM guests.
        var hvmName = lab.AuditJson()["vms"]!.AsArray()
            .First(v => v!["residentOn"]?.GetValue<string>() == "xs2" && v["name"]!.GetValue<string>() != "i-6-101-VM")!["name"]!.GetValue<string>();
        var hvm = await RefAsync(client, "VM", hvmName);
        var pv = await RefAsync(client, "VM", "i-6-101-VM");
        // set_pending_guidances: restart_device_model is the resident VMs' that have a device model (HVM), not the host's.
        Assert.Equal(["restart_device_model"], Strings((await RecordAsync(client, "VM", hvm))["pending_guidances_recommended"]));
        Assert.Empty((await RecordAsync(client, "VM", pv))["pending_guidances_recommended"]!.AsArray());

        // VM.restart_device_models (a localhost migration) clears it.
        await client.CallAsync("VM.restart_device_models", [hvm]);
        Assert.Empty((await RecordAsync(client, "VM", hvm))["pending_guidances_recommended"]!.AsArray());

        await client.CallAsync("host.restart_agent", [xs2]);
        await Wait.ForEventAsync(lab, "host.toolstackReady", "xs2");
        record = await RecordAsync(client, "host", xs2);
        Assert.Empty(record["pending_guidances"]!.AsArray());
        Assert.True(record["enabled"]!.GetValue<bool>());
        Assert.Equal(0, Audit.Host(lab.AuditJson(), "xs2")["bootCount"]!.GetValue<int>());
    }

    [Fact]
    public async Task ApplyUpdates_LivepatchCoveredUpdate_HostKeepsRunning_NoRebootGuidance_TheLiveKernelMoves()
    {
        await using var lab = await Labs.StartAsync(FromFile(Xs8File));
        await using var client = Labs.Client(lab);
        var hash = await SyncAsync(client);
        var xs3 = await RefAsync(client, "host", "xs3");

        Assert.Empty((await client.CallAsync("host.apply_updates", [xs3, hash]))!.AsArray());
        var record = await RecordAsync(client, "host", xs3);
        Assert.Empty(record["pending_guidances"]!.AsArray());
        Assert.Empty(record["pending_guidances_recommended"]!.AsArray());
        var host = Audit.Host(lab.AuditJson(), "xs3");
        Assert.Equal("4.19.19-8.0.38.xs8", host["liveVersions"]!["kernel"]!.GetValue<string>());
        Assert.Equal(0, host["bootCount"]!.GetValue<int>());
        // Nothing pending: the operator may enable the host again without a reboot.
        await client.CallAsync("host.enable", [xs3]);
    }

    [Fact]
    public async Task ApplyUpdates_LivepatchFails_AnswersApplyLivepatchFailed_AndRecommendsARebootForTheKernel()
    {
        await using var lab = await Labs.StartAsync(FromFile(Xs8File, """{ "type": "livepatchFails", "host": "xs3" }"""));
        await using var client = Labs.Client(lab);
        var hash = await SyncAsync(client);
        var xs3 = await RefAsync(client, "host", "xs3");

        var result = (await client.CallAsync("host.apply_updates", [xs3, hash]))!.AsArray();
        var failure = Assert.Single(result)!.AsArray();
        Assert.Equal("APPLY_LIVEPATCH_FAILED", failure[0]!.GetValue<string>());
        var livepatch = JsonNode.Parse(failure[1]!.GetValue<string>())!;
        Assert.Equal(["component", "base_build_id", "base_version", "base_release", "to_version", "to_release"], livepatch.AsObject().Select(kv => kv.Key));
        Assert.Equal("kernel", livepatch["component"]!.GetValue<string>());
        var record = await RecordAsync(client, "host", xs3);
        Assert.Empty(record["pending_guidances"]!.AsArray());
        Assert.Equal(["reboot_host_on_kernel_livepatch_failure"], Strings(record["pending_guidances_recommended"]));
        Assert.Empty(Audit.Host(lab.AuditJson(), "xs3")["liveVersions"]!.AsObject());
    }

    [Fact]
    public async Task ApplyUpdates_UpdateFails_IsApplyUpdatesFailedAfterTheTime_NothingInstalled_TheNextApplyWorks()
    {
        await using var lab = await Labs.StartAsync(FromFile(Xs8File, """{ "type": "updateFails", "host": "xs5" }"""));
        await using var client = Labs.Client(lab);
        var hash = await SyncAsync(client);
        var xs5 = await RefAsync(client, "host", "xs5");
        await client.CallAsync("host.evacuate", [xs5]);

        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [xs5, hash]));
        Assert.Equal(["APPLY_UPDATES_FAILED", xs5], [e.Code, .. e.Parameters]);
        var audit = lab.AuditJson();
        var failed = Audit.Events(audit, "host.applyUpdates.failed", "xs5").Single();
        Assert.Equal(90, Audit.T(failed) - Audit.T(Audit.Events(audit, "host.applyUpdates.start", "xs5").Single()), 3);
        Assert.Equal(["XS84E001"], Strings(Audit.Host(audit, "xs5")["updatesPending"]));
        var record = await RecordAsync(client, "host", xs5);
        Assert.False(record["enabled"]!.GetValue<bool>());
        Assert.Empty(record["pending_guidances"]!.AsArray());
        Assert.Equal("", record["last_update_hash"]!.GetValue<string>());

        Assert.Empty((await client.CallAsync("host.apply_updates", [xs5, hash]))!.AsArray());
        audit = lab.AuditJson();
        Assert.Equal(["XS84E001"], Strings(Audit.Host(audit, "xs5")["updatesInstalled"]));
        Assert.Single(Audit.Events(audit, "host.applyUpdates", "xs5"));
    }

    [Fact]
    public async Task ApplyUpdates_UpToDateHost_ReturnsEmptyAtOnce_SetsNoGuidance()
    {
        await using var lab = await Labs.StartAsync(FromFile(Xs8File));
        await using var client = Labs.Client(lab);
        var hash = await SyncAsync(client);
        var xs4 = await RefAsync(client, "host", "xs4");

        Assert.Empty((await client.CallAsync("host.apply_updates", [xs4, hash]))!.AsArray());
        var record = await RecordAsync(client, "host", xs4);
        Assert.Empty(record["pending_guidances"]!.AsArray());
        Assert.Empty(record["pending_guidances_recommended"]!.AsArray());
        Assert.Empty(record["pending_guidances_full"]!.AsArray());
        var audit = lab.AuditJson();
        Assert.Empty(Audit.Events(audit, "host.applyUpdates.start", "xs4"));
        Assert.Empty(Strings(Audit.Events(audit, "host.applyUpdates", "xs4").Single()["updates"]));
        Assert.Empty(Audit.Host(audit, "xs4")["updatesInstalled"]!.AsArray());
    }

    [Fact]
    public async Task ApplyUpdates_OnTheCoordinator_RestartVmOfAnyHostsUpdate_GoesToEveryRunningVm_ACleanRebootClearsIt()
    {
        await using var lab = await Labs.StartAsync("""
            { "pool": { "xapiVersion": "xenserver-8", "toolstackStartSeconds": 2,
                        "updates": { "applySeconds": 30, "list": [ { "id": "U9", "rpms": ["xenopsd-26.1.5-1.xs8.x86_64"], "guidance": { "mandatory": ["RestartVM"] } } ] } },
              "hosts": [ { "name": "a", "memoryMiB": 65536, "pendingReboot": false }, { "name": "b", "memoryMiB": 65536, "pendingReboot": false, "updates": ["U9"] } ],
              "vms": [ { "name": "v1", "host": "a", "memoryMiB": 1024 }, { "name": "v2", "host": "b", "memoryMiB": 1024 }, { "name": "v3", "memoryMiB": 1024, "powerState": "Halted" } ] }
            """);
        await using var client = Labs.Client(lab);
        var hash = await SyncAsync(client);

        // The coordinator is up to date, yet maybe_set_restart_for_all_vms looks at every host's updates.
        Assert.Empty((await client.CallAsync("host.apply_updates", [await RefAsync(client, "host", "a"), hash]))!.AsArray());
        var v1 = await RefAsync(client, "VM", "v1");
        Assert.Equal(["restart_vm"], Strings((await RecordAsync(client, "VM", v1))["pending_guidances"]));
        Assert.Equal(["restart_vm"], Strings((await RecordAsync(client, "VM", await RefAsync(client, "VM", "v2")))["pending_guidances"]));
        Assert.Empty((await RecordAsync(client, "VM", await RefAsync(client, "VM", "v3")))["pending_guidances"]!.AsArray());

        await client.RunTaskAsync("VM.clean_reboot", [v1]);
        Assert.Empty((await RecordAsync(client, "VM", v1))["pending_guidances"]!.AsArray());
        Assert.Equal("Running", (await RecordAsync(client, "VM", v1))["power_state"]!.GetValue<string>());
    }

    // ---- XCP-ng --------------------------------------------------------------------------------

    [Fact]
    public async Task XcpNg_NoUpdateRepository_SyncAndApplyAreNoRepositoryEnabled_GetUpdatesIs404()
    {
        await using var lab = await Labs.StartAsync(FromFile(XcpNgFile));
        await using var client = Labs.Client(lab);
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();

        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("pool.sync_updates", [pool, false]));
        Assert.Equal(("NO_REPOSITORY_ENABLED", 0), (e.Code, e.Parameters.Count));
        var c4 = await RefAsync(client, "host", "c4");
        e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.apply_updates", [c4, "x"]));
        Assert.Equal("NO_REPOSITORY_ENABLED", e.Code);

        using var raw = new RawXapi(lab);
        var session = await raw.LoginAsync(Labs.Address(lab, "c1"));
        using var http = Labs.PinnedHttp(lab);
        using var response = await http.GetAsync(Labs.Url(lab, Labs.Address(lab, "c1"), "/updates?session_id=" + session));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task XcpNg_CheckUpdate_ListsThePendingPackages_AsDisplayPackageDoes()
    {
        await using var lab = await Labs.StartAsync(FromFile(XcpNgFile));
        await using var client = Labs.Client(lab);

        var text = (await client.CallAsync("host.call_plugin", [await RefAsync(client, "host", "c2"), "updater.py", "check_update", new JsonObject()]))!.GetValue<string>();
        var packages = JsonNode.Parse(text)!.AsArray().Select(p => p!.AsObject()).ToList();
        Assert.Equal(["xen-hypervisor", "xen-tools", "xcp-ng-xapi-plugins"], packages.Select(p => p["name"]!.GetValue<string>()));
        Assert.All(packages, p => Assert.Equal(["name", "version", "release", "description", "changelog", "url", "size", "license"], p.Select(kv => kv.Key)));
        Assert.Equal(("4.17.5", "15.1.xcpng8.3"), (packages[0]["version"]!.GetValue<string>(), packages[0]["release"]!.GetValue<string>()));

        var none = (await client.CallAsync("host.call_plugin", [await RefAsync(client, "host", "c4"), "updater.py", "check_update", new JsonObject()]))!.GetValue<string>();
        Assert.Equal("[]", none);
    }

    [Fact]
    public async Task XcpNg_Update_TakesApplySeconds_InstallsEverything_MeanwhileThePluginIsBusy_ThenTheClientsOtherConfigWriteMeansReboot()
    {
        await using var lab = await Labs.StartAsync(FromFile(XcpNgFile), timeScale: 20);
        await using var client = Labs.Client(lab);
        using var raw = new RawXapi(lab);
        var master = Labs.Address(lab, "c1");
        var session = await raw.LoginAsync(master);
        var c1 = await RefAsync(client, "host", "c1");

        var task = (await raw.CallAsync(master, "Async.host.call_plugin", session, c1, "updater.py", "update", new JsonObject()))!.GetValue<string>();
        // updater.py operationlock: check_update (timeout 0) finds the lock taken; a second update is "already in progress".
        var busy = await raw.FailsAsync(master, "host.call_plugin", session, c1, "updater.py", "check_update", new JsonObject());
        Assert.Equal("-1", busy.Code);
        Assert.Equal("The updater plugin is busy (current operation: update)", busy.Parameters[0]);
        Assert.Equal(("", 3), (busy.Parameters[1], busy.Parameters.Count));
        var again = await raw.FailsAsync(master, "host.call_plugin", session, c1, "updater.py", "update", new JsonObject());
        Assert.Equal(("-1", "Update already in progress"), (again.Code, again.Parameters[0]));

        var done = await raw.WaitTaskAsync(master, session, task);
        Assert.Equal("success", done["status"]!.GetValue<string>());
        var audit = lab.AuditJson();
        var end = Audit.Events(audit, "host.plugin.update", "c1").Single();
        Assert.Equal(120, Audit.T(end) - Audit.T(Audit.Events(audit, "host.plugin.update.start", "c1").Single()), 3);
        Assert.Equal(["xen", "plugins", "kernel"], Strings(Audit.Host(audit, "c1")["updatesInstalled"]));
        Assert.Equal("[]", (await client.CallAsync("host.call_plugin", [c1, "updater.py", "check_update", new JsonObject()]))!.GetValue<string>());

        // What the result holds: json.dumps of run_command's dict.
        var result = JsonNode.Parse(System.Net.WebUtility.HtmlDecode(done["result"]!.GetValue<string>().Replace("<value>", "", StringComparison.Ordinal).Replace("</value>", "", StringComparison.Ordinal)))!;
        Assert.Equal(0, result["returncode"]!.GetValue<int>());
        Assert.Equal("yum", result["command"]![0]!.GetValue<string>());

        // The plugin writes nothing in other_config; Xen Orchestra writes rpm_patch_installation_time (remove, then add).
        var record = await RecordAsync(client, "host", c1);
        Assert.False(record["other_config"]!.AsObject().ContainsKey("rpm_patch_installation_time"));
        var bootTime = double.Parse(record["other_config"]!["boot_time"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        var installed = (bootTime + 3600).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await client.CallAsync("host.remove_from_other_config", [c1, "rpm_patch_installation_time"]);
        await client.CallAsync("host.add_to_other_config", [c1, "rpm_patch_installation_time", installed]);
        var dup = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.add_to_other_config", [c1, "rpm_patch_installation_time", installed]));
        Assert.Equal(["MAP_DUPLICATE_KEY", "host", "other_config", c1, "rpm_patch_installation_time"], [dup.Code, .. dup.Parameters]);
        record = await RecordAsync(client, "host", c1);
        Assert.Equal(installed, record["other_config"]!["rpm_patch_installation_time"]!.GetValue<string>());
        Assert.Empty(record["pending_guidances"]!.AsArray());
    }

    [Fact]
    public async Task XcpNg_UpdaterBusyFault_CheckUpdateIsBusy_InTheShapeXenOrchestraRetries_TheTimesGiven()
    {
        await using var lab = await Labs.StartAsync(FromFile(XcpNgFile, """{ "type": "updaterBusy", "host": "c2", "times": 2 }"""));
        await using var client = Labs.Client(lab);
        var c2 = await RefAsync(client, "host", "c2");

        for (var i = 0; i < 2; i++)
        {
            var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.call_plugin", [c2, "updater.py", "check_update", new JsonObject()]));
            // xo-server patching.mjs isUpdaterBusyError: code '-1' and /plugin is busy/i in params[0].
            Assert.Equal("-1", e.Code);
            Assert.Matches("(?i)plugin is busy", e.Parameters[0]);
        }

        Assert.NotNull(await client.CallAsync("host.call_plugin", [c2, "updater.py", "check_update", new JsonObject()]));
    }

    [Fact]
    public async Task XcpNg_UpdateFails_IsTheYumFailureOfRunCommand_NothingInstalled()
    {
        await using var lab = await Labs.StartAsync(FromFile(XcpNgFile, """{ "type": "updateFails", "host": "c3" }"""));
        await using var client = Labs.Client(lab);
        var c3 = await RefAsync(client, "host", "c3");

        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.call_plugin", [c3, "updater.py", "update", new JsonObject()]));
        Assert.Equal("1", e.Code);
        Assert.StartsWith("Command '['yum', 'update', '--disablerepo=*', ", e.Parameters[0], StringComparison.Ordinal);
        Assert.EndsWith("' failed with code: 1", e.Parameters[0], StringComparison.Ordinal);
        Assert.StartsWith("stdout: '", e.Parameters[1], StringComparison.Ordinal);
        Assert.Contains("', stderr: '", e.Parameters[1], StringComparison.Ordinal);
        var audit = lab.AuditJson();
        Assert.Single(Audit.Events(audit, "host.plugin.update.failed", "c3"));
        Assert.Equal(["plugins"], Strings(Audit.Host(audit, "c3")["updatesPending"]));
        Assert.Empty(Audit.Host(audit, "c3")["updatesInstalled"]!.AsArray());
    }

    [Theory]
    [InlineData("xcp-ng-83-rolling-update.json", "nope.py", "check_update", "XENAPI_MISSING_PLUGIN", "nope.py")]
    [InlineData("xcp-ng-83-rolling-update.json", "updater.py", "frobnicate", "UNKNOWN_XENAPI_PLUGIN_FUNCTION", "frobnicate")]
    [InlineData("xs8-rolling-update.json", "updater.py", "check_update", "XENAPI_MISSING_PLUGIN", "updater.py")]
    public async Task CallPlugin_UnknownPluginOrFunction_IsWhatXapiAnswers(string file, string plugin, string fn, string code, string parameter)
    {
        await using var lab = await Labs.StartAsync(FromFile(file));
        await using var client = Labs.Client(lab);
        var host = (await client.CallAsync("host.get_all", []))!.AsArray()[0]!.GetValue<string>();

        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.call_plugin", [host, plugin, fn, new JsonObject()]));
        Assert.Equal([code, parameter], [e.Code, .. e.Parameters]);
    }
}
