using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Polly;
using Polly.Retry;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Xapi.Wire;

namespace RollingReboot.Xapi;

/// <summary>
/// Installing updates over XenAPI, the way each product does it.
/// XenServer 8 (an update repository): pool.sync_updates (idl/datamodel_pool.ml, 1.329.0: self, force, token, token_id),
/// GET /updates (xapi/xapi_pool.ml get_updates_handler: session_id, host_refs "ref;ref"; the JSON of
/// repository.ml get_pool_updates_in_json; 404 without an enabled repository), host.apply_updates(self, hash)
/// (xapi_host.ml apply_updates; its result: warnings [["APPLY_LIVEPATCH_FAILED", livepatch json]], repository.ml apply_updates').
/// XCP-ng 8.x (yum, no repository in xapi: NO_REPOSITORY_ENABLED): host.call_plugin(host, "updater.py", fn, {}) with
/// check_update (a JSON list of packages) and update (run_command's JSON), retried while the plugin is busy as Xen
/// Orchestra retries (xo-server src/xapi/mixins/patching.mjs isUpdaterBusyError: code "-1", "plugin is busy"; every 2 s,
/// 10 tries), then other_config rpm_patch_installation_time written as XO's _xcpUpdate does.
/// </summary>
public sealed partial class XapiPoolUpdates : IPoolUpdates
{
    public const string Plugin = "updater.py";
    public const string RpmPatchInstallationTime = "rpm_patch_installation_time";

    private readonly XapiClient _client;
    private readonly XapiPoolConnection _pool;
    private readonly ResiliencePipeline _whileBusy;
    private bool? _xcpNg;

    public XapiPoolUpdates(XapiClient client, XapiPoolConnection pool)
    {
        _client = client;
        _pool = pool;
        _whileBusy = new ResiliencePipelineBuilder { TimeProvider = client.Clock }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<XapiException>(IsUpdaterBusy),
                MaxRetryAttempts = 9,
                BackoffType = DelayBackoffType.Constant,
                Delay = TimeSpan.FromSeconds(2),
                UseJitter = false,
            })
            .Build();
    }

    /// <summary>The updater plugin's "busy" (updater.py OperationLocker._raise_busy through xcpngutils error_wrapped),
    /// as Xen Orchestra recognises it.</summary>
    public static bool IsUpdaterBusy(XapiException e) =>
        e.Code == "-1" && e.Parameters.Count > 0 && BusyText().IsMatch(e.Parameters[0]);

    [GeneratedRegex("plugin is busy", RegexOptions.IgnoreCase)]
    private static partial Regex BusyText();

    private async Task<IReadOnlyList<XapiHostRecord>> HostsAsync(CancellationToken cancellationToken)
    {
        var hosts = await _client.AllRecordsAsync("host", XapiHostRecord.From, cancellationToken);
        if (_xcpNg is null)
        {
            var poolRef = await _pool.PoolRefAsync(cancellationToken);
            var master = (await _client.CallAsync("pool.get_master", [poolRef], cancellationToken))?.ToString();
            var m = hosts.FirstOrDefault(h => h.Ref == master) ?? hosts.FirstOrDefault();
            _xcpNg = m?.SoftwareVersion.GetValueOrDefault("product_brand") == PoolSoftware.XcpNg;
        }

        return hosts;
    }

    private async Task<bool> IsXcpNgAsync(CancellationToken cancellationToken)
    {
        if (_xcpNg is null)
        {
            await HostsAsync(cancellationToken);
        }

        return _xcpNg!.Value;
    }

    public async Task<string> SyncAsync(CancellationToken cancellationToken = default)
    {
        if (await IsXcpNgAsync(cancellationToken))
        {
            return "";
        }

        var poolRef = await _pool.PoolRefAsync(cancellationToken);
        // force=false keeps the local mirror; token and token_id empty (their defaults) for a repository without one.
        return await _client.RunTaskAsync("pool.sync_updates", [poolRef, false, "", ""], null, cancellationToken);
    }

    public async Task<PoolUpdates> ReadAsync(IReadOnlyList<string>? hostUuids = null, CancellationToken cancellationToken = default)
    {
        var hosts = await HostsAsync(cancellationToken);
        var wanted = hostUuids is null ? hosts : hosts.Where(h => hostUuids.Contains(h.Uuid)).ToList();
        return _xcpNg == true ? await ReadXcpNgAsync(wanted, cancellationToken) : await ReadRepositoryAsync(hosts, wanted, hostUuids is not null, cancellationToken);
    }

    private async Task<PoolUpdates> ReadRepositoryAsync(IReadOnlyList<XapiHostRecord> all, IReadOnlyList<XapiHostRecord> wanted, bool filter, CancellationToken cancellationToken)
    {
        IReadOnlyList<KeyValuePair<string, string>> query = filter ? [new("host_refs", string.Join(";", wanted.Select(h => h.Ref)))] : [];
        JsonDocument doc;
        try
        {
            doc = await _client.GetJsonAsync("/updates", query, cancellationToken);
        }
        catch (XapiException e) when (e.Code == "HTTP_404")
        {
            // get_updates_handler: NO_REPOSITORY_ENABLED, INVALID_REPOMD_XML or INVALID_UPDATEINFO_XML answer 404.
            throw new XapiException("NO_REPOSITORY_ENABLED", ["GET /updates answered 404: no enabled update repository, or its metadata is invalid"], "GET /updates", e);
        }
        catch (XapiException e) when (e.Code == "HTTP_500")
        {
            // GET_UPDATES_FAILED: the repository's metadata is not there (never synced) or could not be read.
            throw new XapiException("GET_UPDATES_FAILED", ["GET /updates answered 500: the update repository has not been synced yet (xe pool-sync-updates; --exec syncs it first), or xapi could not read it"], "GET /updates", e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            var byRef = all.ToDictionary(h => h.Ref, h => h.Uuid, StringComparer.Ordinal);
            var result = new Dictionary<string, HostUpdates>(StringComparer.Ordinal);
            if (root.TryGetProperty("hosts", out var hs) && hs.ValueKind == JsonValueKind.Array)
            {
                foreach (var h in hs.EnumerateArray())
                {
                    if (!byRef.TryGetValue(Str(h, "ref"), out var uuid))
                    {
                        continue;
                    }

                    var g = h.TryGetProperty("guidance", out var ge) ? ge : default;
                    var guidance = new UpdateGuidance(Kind(g, "mandatory"), Kind(g, "recommended"), Kind(g, "full"), Kind(g, "livepatch"));
                    var livepatches = h.TryGetProperty("livepatches", out var lp) && lp.ValueKind == JsonValueKind.Array ? lp.GetArrayLength() : 0;
                    result[uuid] = new HostUpdates(uuid, Strings(h, "updates"), Strings(h, "RPMS"), guidance, livepatches);
                }
            }

            var summaries = new Dictionary<string, string>(StringComparer.Ordinal);
            if (root.TryGetProperty("updates", out var us) && us.ValueKind == JsonValueKind.Array)
            {
                foreach (var u in us.EnumerateArray())
                {
                    summaries[Str(u, "id")] = Str(u, "summary");
                }
            }

            return new PoolUpdates(Str(root, "hash"), false, result) { Summaries = summaries };
        }
    }

    private static List<string> Kind(JsonElement guidance, string kind) =>
        guidance.ValueKind == JsonValueKind.Object && guidance.TryGetProperty(kind, out var l) && l.ValueKind == JsonValueKind.Array
            ? l.EnumerateArray().Select(x => UpdateGuidance.FromUpdateInfo(x.GetString() ?? "")).Distinct(StringComparer.Ordinal).ToList()
            : [];

    private static List<string> Strings(JsonElement o, string name) =>
        o.TryGetProperty(name, out var l) && l.ValueKind == JsonValueKind.Array ? l.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : [];

    private static string Str(JsonElement o, string name) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : "";

    private async Task<PoolUpdates> ReadXcpNgAsync(IReadOnlyList<XapiHostRecord> wanted, CancellationToken cancellationToken)
    {
        // yum's metadata refresh is slow: the hosts are asked at once, a few at a time.
        using var gate = new SemaphoreSlim(8);
        var read = await Task.WhenAll(wanted.Select(async h =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                var json = await _whileBusy.ExecuteAsync(async ct => (await _client.CallAsync("host.call_plugin", [h.Ref, Plugin, "check_update", new Dictionary<string, string>()], ct))?.ToString() ?? "[]", cancellationToken);
                return (h.Uuid, Packages: ParsePackages(json, h.NameLabel));
            }
            finally
            {
                gate.Release();
            }
        }));
        var hosts = read.ToDictionary(r => r.Uuid, r => new HostUpdates(r.Uuid, [], r.Packages, UpdateGuidance.None, 0), StringComparer.Ordinal);
        return new PoolUpdates("", true, hosts);
    }

    /// <summary>updater.py check_update: a JSON list of {name, version, release, ...} (display_package); an object with
    /// "error" is a failure (XO's _listXcpUpdates checks it).</summary>
    internal static List<string> ParsePackages(string json, string host)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new XapiException(XapiException.ProtocolError, [$"updater.py check_update on {host} did not answer JSON: {e.Message}"], "host.call_plugin", e);
        }

        if (node is JsonObject o && o["error"] is { } error)
        {
            throw new XapiException("UPDATER_ERROR", [error.ToString()], "host.call_plugin");
        }

        return node is JsonArray a
            ? a.OfType<JsonObject>().Select(p => $"{p["name"]}-{p["version"]}-{p["release"]}").Order(StringComparer.Ordinal).ToList()
            : throw new XapiException(XapiException.ProtocolError, [$"updater.py check_update on {host} did not answer a list"], "host.call_plugin");
    }

    public async Task<UpdateApplyResult> ApplyAsync(string hostUuid, string hash, CancellationToken cancellationToken = default)
    {
        var hostRef = await _pool.RefOfAsync("host", hostUuid, cancellationToken);
        if (await IsXcpNgAsync(cancellationToken))
        {
            // Asked again only while the plugin answers busy: its lock refused the call before yum ran (updater.py
            // OperationLocker); a second update while one runs is "Update already in progress", never retried.
            var output = await _whileBusy.ExecuteAsync(async ct => await _client.RunTaskAsync("host.call_plugin", [hostRef, Plugin, "update", new Dictionary<string, string>()], null, ct), cancellationToken);
            // XCP-ng before 8.2.1 answered failures in the result ("exit" not 0); later ones raise (patching.mjs _xcpUpdate).
            if (TryParse(output) is JsonObject r && r["exit"] is JsonValue exit && exit.ToString() != "0")
            {
                throw new XapiException("UPDATER_FAILED", [r["stderr"]?.ToString() ?? "exit " + exit], "host.call_plugin");
            }

            return new UpdateApplyResult([], output);
        }

        var raw = await _client.RunTaskRawAsync("host.apply_updates", [hostRef, hash], null, cancellationToken);
        var failed = new List<string>();
        if (raw.TrimStart().StartsWith("<value", StringComparison.Ordinal) && XmlRpc.DecodeValue(raw, "host.apply_updates") is JsonArray warnings)
        {
            foreach (var w in warnings.OfType<JsonArray>())
            {
                if (w.Count > 0 && w[0]?.ToString() == "APPLY_LIVEPATCH_FAILED")
                {
                    failed.Add(w.Count > 1 ? w[1]?.ToString() ?? "" : "");
                }
            }
        }

        return new UpdateApplyResult(failed);
    }

    private static JsonNode? TryParse(string s)
    {
        try
        {
            return JsonNode.Parse(s);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public async Task<bool> IsApplyingAsync(string hostUuid, CancellationToken cancellationToken = default)
    {
        var hostRef = await _pool.RefOfAsync("host", hostUuid, cancellationToken);
        if (await IsXcpNgAsync(cancellationToken))
        {
            try
            {
                await _client.CallAsync("host.call_plugin", [hostRef, Plugin, "check_update", new Dictionary<string, string>()], cancellationToken);
                return false;
            }
            catch (XapiException e) when (IsUpdaterBusy(e))
            {
                return true;
            }
        }

        // xapi_host.ml apply_updates runs under the host operation apply_updates.
        var ops = await _client.CallAsync("host.get_current_operations", [hostRef], cancellationToken);
        return ops is JsonObject o && o.Any(kv => kv.Value?.ToString() == "apply_updates");
    }

    public async Task MarkPatchedAsync(string hostUuid, CancellationToken cancellationToken = default)
    {
        var hostRef = await _pool.RefOfAsync("host", hostUuid, cancellationToken);
        // The host's own clock, so the time compares with its boot_time whatever this machine's clock says.
        var now = await _pool.GetServerTimeAsync(hostUuid, cancellationToken);
        var value = (now.ToUnixTimeMilliseconds() / 1000.0).ToString("0.000", CultureInfo.InvariantCulture);
        await _client.CallAsync("host.remove_from_other_config", [hostRef, RpmPatchInstallationTime], cancellationToken);
        await _client.CallAsync("host.add_to_other_config", [hostRef, RpmPatchInstallationTime, value], cancellationToken);
    }

    public async Task RestartToolstackAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        await _client.CallAsync("host.restart_agent", [await _pool.RefOfAsync("host", hostUuid, cancellationToken)], cancellationToken);

    public async Task RestartVmAsync(string vmUuid, CancellationToken cancellationToken = default) =>
        await _client.RunTaskAsync("VM.clean_reboot", [await _pool.RefOfAsync("VM", vmUuid, cancellationToken)], null, cancellationToken);

    public async Task RestartDeviceModelsAsync(string vmUuid, CancellationToken cancellationToken = default) =>
        await _client.RunTaskAsync("VM.restart_device_models", [await _pool.RefOfAsync("VM", vmUuid, cancellationToken)], null, cancellationToken);
}
