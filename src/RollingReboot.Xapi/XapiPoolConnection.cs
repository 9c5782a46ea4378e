using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Xapi.Wire;

namespace RollingReboot.Xapi;

/// <summary>The domain's view of a pool, over XenAPI. Objects are named by uuid; refs are resolved here.</summary>
public sealed class XapiPoolConnection : IPoolConnection
{
    private readonly XapiClient _client;
    private readonly ConcurrentDictionary<string, string> _refs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _metricsRefs = new(StringComparer.Ordinal);
    private string? _poolRef;
    private string _eventToken = "";

    // The pool read's records kept current with event.from (XapiPoolModel); reads are one at a time.
    private readonly SemaphoreSlim _modelGate = new(1, 1);
    private XapiPoolModel? _model;
    private int _fullReads;
    private bool _modelOff;

    // The change watch (WaitForChangeAsync): one event.from at a time per connection; a waiter that arrives while one is
    // in flight takes that call's news as its own. The host and host_metrics records it brings (event snapshots are
    // get_record's records: xapi_event.ml from_inner -> events_of -> Eventgen.find_get_record) are kept, so a loop that
    // waits on a host reads it from them. They are complete only once filled from the token "" (every object as an
    // add) on the current session; a new session (the master restarted or moved) starts from "" again.
    private readonly SemaphoreSlim _watchGate = new(1, 1);
    private readonly Lock _watchLock = new();
    private readonly Dictionary<string, JsonObject> _hostSnapshots = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JsonObject> _metricsSnapshots = new(StringComparer.Ordinal);
    private long _watchCalls;
    private long _watchLogins = -1;
    private bool _snapshotsComplete;

    public XapiPoolConnection(XapiClient client)
    {
        _client = client;
    }

    public XapiClient Client => _client;

    /// <summary>
    /// Take the event.from token before the first read too (a run, which reads again at once for its preflight and before
    /// every host): the second read is then one event.from with what changed, not nine get_all_records again. A dry run,
    /// which reads once, leaves it off and saves the call.
    /// </summary>
    public bool ModelFromFirstRead { get; init; }

    public async Task<PoolSnapshot> ReadAsync(CancellationToken cancellationToken = default)
    {
        await _modelGate.WaitAsync(cancellationToken);
        try
        {
            if (_model is { } model && await RefreshAsync(model, cancellationToken))
            {
                return Build(model.Pools.Values.FirstOrDefault(), [.. model.Hosts.Values], model.Metrics, [.. model.Vms.Values], model.Guests, model.Srs,
                    model.Vdis, model.Vbds, model.Pbds);
            }

            // The first read is only the nine get_all_records (a dry run reads once); from the second on (or from the first,
            // ModelFromFirstRead), a token is taken first, so the records read after it can be kept current from it.
            // The session count after the token (the first call of a connection logs in): a login while the records are read
            // means another session, whose token this is not.
            var token = (++_fullReads > 1 || ModelFromFirstRead) && !_modelOff ? await TokenAsync(cancellationToken) : null;
            var logins = _client.Logins;
            var poolTask = _client.AllRecordsAsync("pool", XapiPoolRecord.From, cancellationToken);
            var hostsTask = _client.AllRecordsAsync("host", XapiHostRecord.From, cancellationToken);
            var metricsTask = _client.AllRecordsAsync("host_metrics", XapiHostMetricsRecord.From, cancellationToken);
            var vmsTask = _client.AllRecordsAsync("VM", XapiVmRecord.From, cancellationToken);
            var guestTask = _client.AllRecordsAsync("VM_guest_metrics", XapiVmGuestMetricsRecord.From, cancellationToken);
            var srsTask = _client.AllRecordsAsync("SR", XapiSrRecord.From, cancellationToken);
            var vdisTask = _client.AllRecordsAsync("VDI", XapiVdiRecord.From, cancellationToken);
            var vbdsTask = _client.AllRecordsAsync("VBD", XapiVbdRecord.From, cancellationToken);
            var pbdsTask = _client.AllRecordsAsync("PBD", XapiPbdRecord.From, cancellationToken);
            await Task.WhenAll(poolTask, hostsTask, metricsTask, vmsTask, guestTask, srsTask, vdisTask, vbdsTask, pbdsTask);

            var pools = await poolTask;
            var hosts = await hostsTask;
            var metrics = (await metricsTask).ToDictionary(m => m.Ref);
            var vms = await vmsTask;
            var guest = (await guestTask).ToDictionary(g => g.Ref);
            var srs = (await srsTask).ToDictionary(s => s.Ref);
            var vdis = (await vdisTask).ToDictionary(v => v.Ref);
            var vbds = (await vbdsTask).ToDictionary(v => v.Ref);
            var pbds = (await pbdsTask).ToDictionary(p => p.Ref);
            if (token is not null && _client.Logins == logins)
            {
                var m = new XapiPoolModel(token, logins);
                Fill(m.Pools, pools, p => p.Ref);
                Fill(m.Hosts, hosts, h => h.Ref);
                Fill(m.Metrics, metrics.Values, x => x.Ref);
                Fill(m.Vms, vms, v => v.Ref);
                Fill(m.Guests, guest.Values, g => g.Ref);
                Fill(m.Srs, srs.Values, x => x.Ref);
                Fill(m.Vdis, vdis.Values, x => x.Ref);
                Fill(m.Vbds, vbds.Values, x => x.Ref);
                Fill(m.Pbds, pbds.Values, x => x.Ref);
                _model = m;
            }

            return Build(pools.FirstOrDefault(), hosts, metrics, vms, guest, srs, vdis, vbds, pbds);
        }
        finally
        {
            _modelGate.Release();
        }

        static void Fill<T>(Dictionary<string, T> table, IEnumerable<T> records, Func<T, string> key)
        {
            foreach (var r in records)
            {
                table[key(r)] = r;
            }
        }
    }

    /// <summary>
    /// Brings the model up to date with one <c>event.from</c> (timeout 0: at once, empty when nothing changed). False
    /// when it cannot be: a new session (the master restarted or moved), a token xapi cannot parse, or a host without
    /// <c>event.from</c> (the model is then not used again on this connection); the caller reads everything.
    /// </summary>
    private async Task<bool> RefreshAsync(XapiPoolModel model, CancellationToken cancellationToken)
    {
        if (_client.Logins != model.Logins)
        {
            _model = null;
            return false;
        }

        try
        {
            var result = await _client.CallAsync("event.from", [XapiPoolModel.Classes, model.Token, 0.0], cancellationToken);
            if (_client.Logins != model.Logins)
            {
                _model = null;
                return false;
            }

            model.Apply(result?["events"] as JsonArray);
            model.Token = result?["token"]?.ToString() ?? model.Token;
            return true;
        }
        catch (XapiException e) when (e.Code == "EVENT_FROM_TOKEN_PARSE_FAILURE" || !(e.IsTransient || e.IsUnreachable))
        {
            _model = null;
            _modelOff |= e.Code != "EVENT_FROM_TOKEN_PARSE_FAILURE";
            return false;
        }
    }

    /// <summary>A token from before the read that follows: event.from on the pool from "" (its one record), at once.</summary>
    private async Task<string?> TokenAsync(CancellationToken cancellationToken)
    {
        try
        {
            var result = await _client.CallAsync("event.from", [new[] { "pool" }, "", 0.0], cancellationToken);
            return result?["token"]?.ToString();
        }
        catch (XapiException e) when (!(e.IsTransient || e.IsUnreachable))
        {
            _modelOff = true;
            return null;
        }
    }

    private PoolSnapshot Build(XapiPoolRecord? poolRecord, IReadOnlyList<XapiHostRecord> hosts, IReadOnlyDictionary<string, XapiHostMetricsRecord> metrics,
        IReadOnlyList<XapiVmRecord> vms, IReadOnlyDictionary<string, XapiVmGuestMetricsRecord> guest, IReadOnlyDictionary<string, XapiSrRecord> srs,
        IReadOnlyDictionary<string, XapiVdiRecord> vdis, IReadOnlyDictionary<string, XapiVbdRecord> vbds, IReadOnlyDictionary<string, XapiPbdRecord> pbds)
    {
        var pool = poolRecord ?? throw new XapiException(XapiException.ProtocolError, ["the host reports no pool"], "pool.get_all_records");
        var hostUuidByRef = hosts.ToDictionary(h => h.Ref, h => h.Uuid);

        _poolRef = pool.Ref;
        foreach (var h in hosts)
        {
            _refs[h.Uuid] = h.Ref;
        }

        foreach (var v in vms)
        {
            _refs[v.Uuid] = v.Ref;
        }

        foreach (var s in srs.Values)
        {
            _refs[s.Uuid] = s.Ref;
        }

        _client.RememberHosts(hosts.Select(h => h.Address));

        var srInfos = srs.Values.Select(s =>
        {
            string? local = null;
            if (!s.Shared)
            {
                var hostsOfSr = s.Pbds.Select(p => pbds.GetValueOrDefault(p)).Where(p => p is not null).Select(p => hostUuidByRef.GetValueOrDefault(p!.Host)).Where(u => u is not null).Distinct().ToList();
                local = hostsOfSr.Count == 1 ? hostsOfSr[0] : null;
            }

            return new SrInfo(s.Uuid, s.NameLabel, s.Shared, local) { Clustered = s.Clustered };
        }).ToList();

        var unplugged = pbds.Values.Where(p => !p.CurrentlyAttached && srs.TryGetValue(p.Sr, out var sr) && sr.Shared)
            .ToLookup(p => p.Host, p => new SrLink(srs[p.Sr].Uuid, srs[p.Sr].NameLabel));
        var hostStates = hosts.Select(h => h.ToHostState(metrics.GetValueOrDefault(h.Metrics)) with
        {
            UnpluggedSharedSrs = [.. unplugged[h.Ref].OrderBy(s => s.Name, StringComparer.Ordinal)],
        }).ToList();

        var vmStates = new List<VmState>();
        foreach (var v in vms.Where(v => v.IsGuest))
        {
            var disks = new List<string>();
            var cds = new List<string>();
            foreach (var vbdRef in v.Vbds)
            {
                if (!vbds.TryGetValue(vbdRef, out var vbd) || vbd.Empty || !vdis.TryGetValue(vbd.Vdi, out var vdi) || !srs.TryGetValue(vdi.Sr, out var sr))
                {
                    continue;
                }

                (vbd.Type.Equals("CD", StringComparison.OrdinalIgnoreCase) ? cds : disks).Add(sr.Uuid);
            }

            var refusal = XapiMigrationVerdict.Refusal(v, guest.GetValueOrDefault(v.GuestMetrics));
            vmStates.Add(new VmState(v.Uuid, v.NameLabel, v.PowerState, hostUuidByRef.GetValueOrDefault(v.ResidentOn), v.MemoryStaticMax + v.MemoryOverhead,
                refusal, disks.Distinct().ToList(), cds.Distinct().ToList(), v.HaRestartPriority, v.CurrentOperations)
            {
                PendingGuidances = v.PendingGuidances,
            });
        }

        var heartbeat = pool.HaStatefiles.Select(vdiRef => vdis.TryGetValue(vdiRef, out var vdi) && srs.TryGetValue(vdi.Sr, out var sr) ? sr.Uuid : null)
            .Where(u => u is not null).Select(u => u!).Distinct().ToList();
        var ha = new HaSettings(pool.HaEnabled, heartbeat, pool.HaConfiguration, pool.HaHostFailuresToTolerate, pool.HaAllowOvercommit);

        return new PoolSnapshot(pool.Uuid, pool.NameLabel, hostUuidByRef.GetValueOrDefault(pool.Master) ?? "", ha, pool.OtherConfig, pool.CurrentOperations, hostStates, vmStates, srInfos)
        {
            MigrationCompression = pool.MigrationCompression,
        };
    }

    public async Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> GetVmsPreventingEvacuationAsync(string hostUuid, CancellationToken cancellationToken = default)
    {
        var result = await _client.CallAsync("host.get_vms_which_prevent_evacuation", [await RefAsync("host", hostUuid, cancellationToken)], cancellationToken);
        var map = new Dictionary<string, IReadOnlyList<string>>();
        if (result is JsonObject o)
        {
            // Refs back to uuids once per call, not a scan of every known ref per VM (3,000 VMs: quadratic).
            var uuidByRef = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (knownUuid, knownRef) in o.Count > 0 ? _refs : Enumerable.Empty<KeyValuePair<string, string>>())
            {
                uuidByRef.TryAdd(knownRef, knownUuid);
            }

            foreach (var (vmRef, reason) in o)
            {
                var uuid = uuidByRef.GetValueOrDefault(vmRef) ?? (await _client.CallAsync("VM.get_uuid", [vmRef], cancellationToken))?.ToString() ?? vmRef;
                map[uuid] = reason is JsonArray a ? a.Select(n => n?.ToString() ?? "").ToList() : [reason?.ToString() ?? ""];
            }
        }

        return map;
    }

    public async Task<IReadOnlyList<string>?> CanBootHereAsync(string vmUuid, string hostUuid, CancellationToken cancellationToken = default)
    {
        var vm = await RefAsync("VM", vmUuid, cancellationToken);
        var host = await RefAsync("host", hostUuid, cancellationToken);
        try
        {
            await _client.CallAsync("VM.assert_can_boot_here", [vm, host], cancellationToken);
            return null;
        }
        catch (XapiException e) when (!e.IsTransient)
        {
            return [e.Code, .. e.Parameters];
        }
    }

    public async Task<DateTimeOffset> GetServerTimeAsync(string hostUuid, CancellationToken cancellationToken = default)
    {
        var result = await _client.CallAsync("host.get_servertime", [await RefAsync("host", hostUuid, cancellationToken)], cancellationToken);
        return XapiDateTime.TryParse(result?.ToString(), out var t)
            ? t
            : throw new XapiException(XapiException.ProtocolError, ["host.get_servertime returned no datetime"], "host.get_servertime");
    }

    /// <summary>As a task: disabling HA waits on every host's HA daemon and can take minutes on a real pool
    /// (ocaml/xapi/xapi_ha.ml, disable), longer than one HTTP call may take.</summary>
    public async Task DisableHaAsync(CancellationToken cancellationToken = default) =>
        await _client.RunTaskAsync("pool.disable_ha", [], null, cancellationToken);

    public async Task EnableHaAsync(IReadOnlyList<string> heartbeatSrUuids, IReadOnlyDictionary<string, string> configuration, CancellationToken cancellationToken = default)
    {
        var refs = new List<string>();
        foreach (var sr in heartbeatSrUuids)
        {
            refs.Add(await RefAsync("SR", sr, cancellationToken));
        }

        // As a task, like disable: enable_ha starts the HA daemon on every host (xapi_ha.ml, enable).
        await _client.RunTaskAsync("pool.enable_ha", [refs, configuration], null, cancellationToken);
    }

    public async Task SetHaHostFailuresToTolerateAsync(long value, CancellationToken cancellationToken = default) =>
        await _client.CallAsync("pool.set_ha_host_failures_to_tolerate", [await PoolRefAsync(cancellationToken), value], cancellationToken);

    public async Task SetHaAllowOvercommitAsync(bool value, CancellationToken cancellationToken = default) =>
        await _client.CallAsync("pool.set_ha_allow_overcommit", [await PoolRefAsync(cancellationToken), value], cancellationToken);

    public async Task<bool> TryAddPoolOtherConfigAsync(string key, string value, CancellationToken cancellationToken = default)
    {
        try
        {
            await _client.CallAsync("pool.add_to_other_config", [await PoolRefAsync(cancellationToken), key, value], cancellationToken);
            return true;
        }
        catch (XapiException e) when (e.Code == "MAP_DUPLICATE_KEY")
        {
            return false;
        }
    }

    public async Task RemovePoolOtherConfigAsync(string key, CancellationToken cancellationToken = default) =>
        await _client.CallAsync("pool.remove_from_other_config", [await PoolRefAsync(cancellationToken), key], cancellationToken);

    public async Task DisableHostAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        await _client.CallAsync("host.disable", [await RefAsync("host", hostUuid, cancellationToken)], cancellationToken);

    public async Task DisableHostUntilEnabledAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        // The optional auto_enable is dropped by an xapi before 25.31.0 (MESSAGE_PARAMETER_COUNT_MISMATCH): a plain disable.
        await _client.CallWithOptionalAsync("host.disable", [await RefAsync("host", hostUuid, cancellationToken)], [false], cancellationToken);

    public async Task EnableHostAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        await _client.CallAsync("host.enable", [await RefAsync("host", hostUuid, cancellationToken)], cancellationToken);

    public async Task RebootHostAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        await _client.CallAsync("host.reboot", [await RefAsync("host", hostUuid, cancellationToken)], cancellationToken);

    public async Task ShutdownHostAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        await _client.CallAsync("host.shutdown", [await RefAsync("host", hostUuid, cancellationToken)], cancellationToken);

    public async Task PowerOnHostAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        await _client.CallAsync("host.power_on", [await RefAsync("host", hostUuid, cancellationToken)], cancellationToken);

    public async Task<HostState> ReadHostAsync(string hostUuid, CancellationToken cancellationToken = default)
    {
        var hostRef = await RefAsync("host", hostUuid, cancellationToken);
        // A host keeps its host_metrics object across reboots (xapi/dbsync_slave.ml updates it in place): once known, both
        // records are asked at once, one round trip instead of two.
        var known = _metricsRefs.GetValueOrDefault(hostRef);
        var hostTask = _client.CallAsync("host.get_record", [hostRef], cancellationToken);
        var metricsTask = known is null ? null : _client.CallAsync("host_metrics.get_record", [known], cancellationToken);
        var record = await hostTask as JsonObject
            ?? throw new XapiException(XapiException.ProtocolError, ["host.get_record returned no record"], "host.get_record");
        var h = XapiHostRecord.From(hostRef, record);
        XapiHostMetricsRecord? m = null;
        if (h.Metrics is { Length: > 0 } metricsRef && metricsRef != "OpaqueRef:NULL")
        {
            _metricsRefs[hostRef] = metricsRef;
            var reply = metricsTask is not null && metricsRef == known ? await metricsTask : await _client.CallAsync("host_metrics.get_record", [metricsRef], cancellationToken);
            m = reply is JsonObject mr ? XapiHostMetricsRecord.From(metricsRef, mr) : null;
        }

        if (metricsTask is not null && !metricsTask.IsCompleted)
        {
            // Not used (the host's metrics changed): let it end unobserved.
            _ = metricsTask.ContinueWith(t => t.Exception, TaskScheduler.Default);
        }

        return h.ToHostState(m);
    }

    public async Task<IReadOnlyList<SrLink>> ReadUnpluggedSharedSrsAsync(string hostUuid, CancellationToken cancellationToken = default)
    {
        var hostRef = await RefAsync("host", hostUuid, cancellationToken);
        var pbdRefs = await _client.CallAsync("host.get_PBDs", [hostRef], cancellationToken) is JsonArray a ? a.Select(n => n?.ToString() ?? "").ToList() : [];
        // The host's PBDs at once, then the SRs of those not plugged at once: two round trips whatever their number.
        var pbds = await Task.WhenAll(pbdRefs.Select(async r => await _client.CallAsync("PBD.get_record", [r], cancellationToken) is JsonObject pr ? XapiPbdRecord.From(r, pr) : null));
        var srs = await Task.WhenAll(pbds.Where(p => p is { CurrentlyAttached: false }).Select(async p =>
            await _client.CallAsync("SR.get_record", [p!.Sr], cancellationToken) is JsonObject sr ? XapiSrRecord.From(p.Sr, sr) : null));
        return [.. srs.Where(s => s is { Shared: true }).Select(s => new SrLink(s!.Uuid, s.NameLabel)).OrderBy(s => s.Name, StringComparer.Ordinal)];
    }

    public async Task PlugSrAsync(string hostUuid, string srUuid, CancellationToken cancellationToken = default)
    {
        var hostRef = await RefAsync("host", hostUuid, cancellationToken);
        var srRef = await RefAsync("SR", srUuid, cancellationToken);
        // A PBD joins one host and one SR (idl/datamodel.ml module PBD: host and SR, StaticRO): the host's PBD for the SR is the one
        // in both lists. Two calls at once, however many hosts see the SR (not PBD.get_host for each of its PBDs).
        var hostPbds = _client.CallAsync("host.get_PBDs", [hostRef], cancellationToken);
        var srPbds = _client.CallAsync("SR.get_PBDs", [srRef], cancellationToken);
        var ofHost = (await hostPbds is JsonArray h ? h.Select(n => n?.ToString() ?? "") : []).ToHashSet(StringComparer.Ordinal);
        var pbdRef = (await srPbds is JsonArray a ? a.Select(n => n?.ToString() ?? "") : []).FirstOrDefault(ofHost.Contains)
            ?? throw new XapiException("HANDLE_INVALID", ["PBD", $"no PBD of SR {srUuid} on host {hostUuid}"], "PBD.plug");
        await _client.CallAsync("PBD.plug", [pbdRef], cancellationToken);
    }

    /// <summary>Async.VM.clean_shutdown(vm), waiting for its task (cancelled with the token).</summary>
    public async Task CleanShutdownVmAsync(string vmUuid, CancellationToken cancellationToken = default) =>
        await _client.RunTaskAsync("VM.clean_shutdown", [await RefAsync("VM", vmUuid, cancellationToken)], null, cancellationToken);

    /// <summary>Async.VM.hard_shutdown(vm), waiting for its task.</summary>
    public async Task HardShutdownVmAsync(string vmUuid, CancellationToken cancellationToken = default) =>
        await _client.RunTaskAsync("VM.hard_shutdown", [await RefAsync("VM", vmUuid, cancellationToken)], null, cancellationToken);

    /// <summary>Async.VM.start_on(vm, host, start_paused=false, force=false) (idl/datamodel_vm.ml), waiting for its task.</summary>
    public async Task StartVmOnAsync(string vmUuid, string hostUuid, CancellationToken cancellationToken = default)
    {
        var vm = await RefAsync("VM", vmUuid, cancellationToken);
        var host = await RefAsync("host", hostUuid, cancellationToken);
        await _client.RunTaskAsync("VM.start_on", [vm, host, false, false], null, cancellationToken);
    }

    public Task MigrateVmAsync(string vmUuid, string targetHostUuid, IProgress<double>? progress = null, CancellationToken cancellationToken = default) =>
        MigrateVmAsync(vmUuid, targetHostUuid, MigrationRoute.Default, progress, cancellationToken);

    /// <summary>
    /// VM.pool_migrate with options live=true, network=REF (the route's network: xapi/xapi_vm_migrate.ml pool_migrate sends
    /// the stream to the destination's address on it) and compress=true|false when the route says (use_compression:
    /// otherwise pool.migration_compression decides).
    /// </summary>
    public async Task MigrateVmAsync(string vmUuid, string targetHostUuid, MigrationRoute route, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(route);
        var vm = await RefAsync("VM", vmUuid, cancellationToken);
        var host = await RefAsync("host", targetHostUuid, cancellationToken);
        var options = new Dictionary<string, string> { ["live"] = "true" };
        if (route.NetworkUuid is { } network)
        {
            options["network"] = await RefAsync("network", network, cancellationToken);
        }

        if (route.Compress is { } compress)
        {
            options["compress"] = compress ? "true" : "false";
        }

        await _client.RunTaskAsync("VM.pool_migrate", [vm, host, options], progress, cancellationToken);
    }

    public async Task<IReadOnlyList<NetworkInfo>> ReadNetworksAsync(CancellationToken cancellationToken = default)
    {
        var networksTask = _client.AllRecordsAsync("network", XapiNetworkRecord.From, cancellationToken);
        var pifsTask = _client.AllRecordsAsync("PIF", XapiPifRecord.From, cancellationToken);
        var metricsTask = _client.AllRecordsAsync("PIF_metrics", XapiPifMetricsRecord.From, cancellationToken);
        await Task.WhenAll(networksTask, pifsTask, metricsTask);
        var pifs = await pifsTask;
        // The hosts' refs are known from the pool read that comes first; only a host not seen yet costs a read of them all.
        var hostUuids = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (uuid, r) in _refs)
        {
            hostUuids.TryAdd(r, uuid);
        }

        if (pifs.Any(p => !hostUuids.ContainsKey(p.Host)))
        {
            foreach (var (r, uuid) in await _client.AllRecordsAsync("host", (r, o) => (Ref: r, Uuid: new Fields(o).Str("uuid")), cancellationToken))
            {
                _refs[uuid] = r;
                hostUuids[r] = uuid;
            }
        }

        var metrics = (await metricsTask).ToDictionary(m => m.Ref, StringComparer.Ordinal);
        var pifsByNetwork = pifs.ToLookup(p => p.Network, StringComparer.Ordinal);
        var result = new List<NetworkInfo>();
        foreach (var n in await networksTask)
        {
            _refs[n.Uuid] = n.Ref;
            var ports = pifsByNetwork[n.Ref]
                .Where(p => hostUuids.ContainsKey(p.Host))
                .Select(p => new NetworkPort(hostUuids[p.Host], p.Device, p.CurrentlyAttached, p.HasPrimaryAddress,
                    metrics.TryGetValue(p.Metrics, out var m) && m.Speed > 0 ? m.Speed : null))
                .ToList();
            result.Add(new NetworkInfo(n.Uuid, n.NameLabel, n.Bridge, ports));
        }

        return result;
    }

    public async Task WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var callsBefore = Interlocked.Read(ref _watchCalls);
        var started = _client.Clock.GetUtcNow();
        timeout = timeout > TimeSpan.FromSeconds(0.1) ? timeout : TimeSpan.FromSeconds(0.1);
        using var bound = new CancellationTokenSource(timeout, _client.Clock);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, bound.Token);
        try
        {
            await _watchGate.WaitAsync(linked.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The bound passed while another waiter's event.from was in flight: a wait that saw no change.
            return;
        }

        try
        {
            if (Interlocked.Read(ref _watchCalls) != callsBefore)
            {
                // An event.from ended while this one waited for its turn: what it saw is this waiter's change too.
                return;
            }

            var left = timeout - (_client.Clock.GetUtcNow() - started);
            await WatchOnceAsync(left > TimeSpan.FromSeconds(0.1) ? left : TimeSpan.FromSeconds(0.1), cancellationToken);
        }
        finally
        {
            _watchGate.Release();
        }
    }

    public async Task<HostState> WaitForHostChangeAsync(string hostUuid, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        await WaitForChangeAsync(timeout, cancellationToken);
        return HostFromSnapshots(hostUuid) ?? await ReadHostAsync(hostUuid, cancellationToken);
    }

    /// <summary>The host as the watch's last event.from left it; null when the watch does not hold all of it.</summary>
    private HostState? HostFromSnapshots(string hostUuid)
    {
        if (!_refs.TryGetValue(hostUuid, out var hostRef))
        {
            return null;
        }

        lock (_watchLock)
        {
            if (!_snapshotsComplete || _watchLogins != _client.Logins || !_hostSnapshots.TryGetValue(hostRef, out var record))
            {
                return null;
            }

            var h = XapiHostRecord.From(hostRef, record);
            if (h.Metrics is not { Length: > 0 } metricsRef || metricsRef == "OpaqueRef:NULL")
            {
                return h.ToHostState(null);
            }

            return _metricsSnapshots.TryGetValue(metricsRef, out var m) ? h.ToHostState(XapiHostMetricsRecord.From(metricsRef, m)) : null;
        }
    }

    private async Task WatchOnceAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        string token;
        var logins = _client.Logins;
        lock (_watchLock)
        {
            if (_watchLogins != logins)
            {
                // Another session: start from every object again, so the copies cannot keep what the old one last saw.
                _watchLogins = logins;
                _eventToken = "";
                _snapshotsComplete = false;
                _hostSnapshots.Clear();
                _metricsSnapshots.Clear();
            }

            token = _eventToken;
        }

        try
        {
            var result = await _client.CallAsync("event.from", [new[] { "host", "host_metrics", "pool" }, token, timeout.TotalSeconds], cancellationToken, timeout);
            lock (_watchLock)
            {
                if (_client.Logins != logins)
                {
                    // The call logged in on its way: the copies are the old session's. Its answer is complete if it was
                    // asked from "" (the first call, or the one after a new session); otherwise start from "" again.
                    _watchLogins = _client.Logins;
                    _hostSnapshots.Clear();
                    _metricsSnapshots.Clear();
                    _snapshotsComplete = false;
                    if (token.Length != 0)
                    {
                        _eventToken = "";
                        return;
                    }
                }

                Apply(result?["events"] as JsonArray);
                _eventToken = result?["token"]?.ToString() ?? _eventToken;
                _snapshotsComplete |= token.Length == 0;
            }
        }
        catch (XapiException e) when (e.Code == "EVENT_FROM_TOKEN_PARSE_FAILURE")
        {
            // xapi_event.ml from: the one error event.from raises about its token. Start again from "" (every object,
            // at once), and let the caller read the state as after any change.
            lock (_watchLock)
            {
                _eventToken = "";
                _snapshotsComplete = false;
                _hostSnapshots.Clear();
                _metricsSnapshots.Clear();
            }
        }
        finally
        {
            Interlocked.Increment(ref _watchCalls);
        }
    }

    /// <summary>Keeps each event's snapshot (add and mod carry the record; del none: xapi_event.ml events_of).</summary>
    private void Apply(JsonArray? events)
    {
        foreach (var e in events ?? [])
        {
            var table = e?["class"]?.ToString() switch
            {
                "host" => _hostSnapshots,
                "host_metrics" => _metricsSnapshots,
                _ => null,
            };
            if (table is null || e?["ref"]?.ToString() is not { Length: > 0 } r)
            {
                continue;
            }

            if (e["operation"]?.ToString() == "del")
            {
                table.Remove(r);
            }
            else if (e["snapshot"] is JsonObject snapshot)
            {
                table[r] = snapshot;
                if (table == _hostSnapshots && snapshot["uuid"]?.ToString() is { Length: > 0 } uuid)
                {
                    _refs[uuid] = r;
                }
            }
        }
    }

    private XapiPoolUpdates? _updates;

    /// <summary>--apply-updates over XenAPI: XenServer's repository or XCP-ng's updater plugin (<see cref="XapiPoolUpdates"/>).</summary>
    public IPoolUpdates Updates => _updates ??= new XapiPoolUpdates(_client, this);

    /// <summary>The ref of a host or VM by uuid (read once, then cached).</summary>
    internal Task<string> RefOfAsync(string cls, string uuid, CancellationToken cancellationToken) => RefAsync(cls, uuid, cancellationToken);

    public ValueTask DisposeAsync() => _client.DisposeAsync();

    internal async Task<string> PoolRefAsync(CancellationToken cancellationToken)
    {
        if (_poolRef is null)
        {
            var all = await _client.CallAsync("pool.get_all", [], cancellationToken) as JsonArray;
            _poolRef = all?.FirstOrDefault()?.ToString() ?? throw new XapiException(XapiException.ProtocolError, ["no pool"], "pool.get_all");
        }

        return _poolRef;
    }

    private async Task<string> RefAsync(string cls, string uuid, CancellationToken cancellationToken)
    {
        if (_refs.TryGetValue(uuid, out var r))
        {
            return r;
        }

        r = (await _client.CallAsync(cls + ".get_by_uuid", [uuid], cancellationToken))?.ToString()
            ?? throw new XapiException("UUID_INVALID", [cls, uuid], cls + ".get_by_uuid");
        _refs[uuid] = r;
        return r;
    }
}
