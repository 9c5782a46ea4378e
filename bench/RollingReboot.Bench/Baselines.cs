using RollingReboot.CloudStack;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Lab;
using RollingReboot.Xapi;
using RollingReboot.Xapi.Tls;

namespace RollingReboot.Bench;

/// <summary>
/// The baselines: correct rolling reboots written the simple ways, with the project's XenAPI client. Each one
/// turns HA off and the CloudStack cluster to Unmanaged, takes the master first and the other hosts in name
/// order, disables the host, empties it (its own way), reboots it, waits for it to be back (new boot time,
/// live, enabled; through event.from), and at the end puts HA and CloudStack back as they were.
/// <see cref="XoRpr"/> is Xen Orchestra's rolling pool reboot as XO writes it, inside the same CloudStack wrapper.
/// </summary>
public sealed class Baseline(LabRuntime lab, string method, IReadOnlyCollection<string>? onlyHosts, TextWriter log)
{
    public const string Evacuate = "evacuate";
    public const string Evacuate1 = "evacuate1";
    public const string Greedy = "greedy5";
    public const string Sequential = "sequential";
    public const string XoRpr = "xo-rpr";

    private const string NullRef = "OpaqueRef:NULL";

    /// <summary>xo-server config.toml: vmEvacuationConcurrency.</summary>
    private const int XoEvacuationConcurrency = 3;

    /// <summary>xo-server config.toml: restartHostTimeout.</summary>
    private static readonly TimeSpan s_xoRestartHostTimeout = TimeSpan.FromMinutes(20);

    /// <summary>Blockers XO lets through its precheck as "pinned" VMs (shut down only with shutdownPinnedVms).</summary>
    private static readonly HashSet<string> s_xoPinned = ["VM_HAS_PCI_ATTACHED", "VM_HAS_VGPU", "VM_HAS_SRIOV_VIF"];

    public long ClientCalls { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var env = lab.Environment;
        var client = new XapiClient(new XapiClientOptions
        {
            Url = new Uri(env["ROLLREBOOT_XAPI_URL"]),
            UserName = env["ROLLREBOOT_XAPI_USER"],
            Password = env["ROLLREBOOT_XAPI_PASSWORD"],
            Certificates = new XapiCertificatePolicy(env["ROLLREBOOT_XAPI_CERT_SHA256"].Split(',')),
            TimeProvider = lab.Clock,
            MasterSearchTimeout = TimeSpan.FromMinutes(10),
        });
        await using var pool = new XapiPoolConnection(client);
        using var cloud = env.TryGetValue("ROLLREBOOT_CLOUDSTACK_URL", out var csUrl)
            ? new CloudStackClient(new CloudStackClientOptions
            {
                Endpoint = new Uri(csUrl),
                ApiKey = env["ROLLREBOOT_CLOUDSTACK_API_KEY"],
                SecretKey = env["ROLLREBOOT_CLOUDSTACK_SECRET_KEY"],
                PollInterval = TimeSpan.FromSeconds(2),
            }, timeProvider: lab.Clock)
            : null;
        try
        {
            var snapshot = await pool.ReadAsync(cancellationToken);
            CloudStackCluster? cluster = null;
            if (cloud is not null)
            {
                cluster = (await cloud.FindClustersAsync(snapshot.Name, null, cancellationToken)).Single();
            }

            if (method == XoRpr)
            {
                // XO knows nothing of CloudStack; every baseline must still be a correct rolling reboot of a CloudStack
                // cluster, so the bench's wrapper takes the cluster out of CloudStack's management around XO's run.
                var unmanage = cluster is { ManagedState: "Managed" };
                if (unmanage)
                {
                    await cloud!.SetManagedStateAsync(cluster!.Id, managed: false, cancellationToken);
                }

                await XoRollingPoolRebootAsync(pool, client, snapshot, cancellationToken);
                if (unmanage)
                {
                    await cloud!.SetManagedStateAsync(cluster!.Id, managed: true, cancellationToken);
                    await cloud.WaitForHostsUpAsync(cluster.Id, TimeSpan.FromMinutes(10), cancellationToken);
                }

                return;
            }

            var ha = snapshot.Ha;
            if (ha.Enabled)
            {
                await pool.DisableHaAsync(cancellationToken);
            }

            var managed = cluster is { ManagedState: "Managed" };
            if (managed)
            {
                await cloud!.SetManagedStateAsync(cluster!.Id, managed: false, cancellationToken);
            }

            var order = snapshot.Hosts.Where(h => onlyHosts is null || onlyHosts.Contains(h.Name))
                .OrderBy(h => h.Uuid == snapshot.MasterUuid ? 0 : 1).ThenBy(h => h.Name, NaturalNameComparer.Instance).ToList();
            foreach (var host in order)
            {
                await RebootOneAsync(pool, client, host, cancellationToken);
            }

            if (ha.Enabled)
            {
                await pool.EnableHaAsync(ha.HeartbeatSrUuids, ha.Configuration, cancellationToken);
                await pool.SetHaHostFailuresToTolerateAsync(ha.HostFailuresToTolerate, cancellationToken);
                await pool.SetHaAllowOvercommitAsync(ha.AllowOvercommit, cancellationToken);
            }

            if (managed)
            {
                await cloud!.SetManagedStateAsync(cluster!.Id, managed: true, cancellationToken);
                await cloud.WaitForHostsUpAsync(cluster.Id, TimeSpan.FromMinutes(10), cancellationToken);
            }
        }
        finally
        {
            ClientCalls = client.CallCount;
        }
    }

    private async Task RebootOneAsync(XapiPoolConnection pool, XapiClient client, HostState host, CancellationToken cancellationToken)
    {
        await log.WriteLineAsync($"    {method}: {host.Name}");
        await pool.DisableHostAsync(host.Uuid, cancellationToken);
        switch (method)
        {
            case Evacuate:
                // XAPI chooses the targets and runs its default batch of parallel migrations.
                var hostRef = (await client.CallAsync("host.get_by_uuid", [host.Uuid], cancellationToken))!.ToString();
                await client.RunTaskAsync("host.evacuate", [hostRef], null, cancellationToken);
                break;
            case Evacuate1:
                // As XCP-ng 8.2's xapi (1.249) evacuates: one VM.pool_migrate after the other. The lab's xapi (24.19)
                // takes evacuate_batch_size (23.28+); network is the null ref (the management network), as XAPI's default.
                var oneRef = (await client.CallAsync("host.get_by_uuid", [host.Uuid], cancellationToken))!.ToString();
                await client.RunTaskAsync("host.evacuate", [oneRef, NullRef, 1L], null, cancellationToken);
                break;
            case Greedy:
                await MigrateAwayAsync(pool, host, 5, cancellationToken);
                break;
            case Sequential:
                await MigrateAwayAsync(pool, host, 1, cancellationToken);
                break;
            default:
                throw new ArgumentException("unknown baseline " + method);
        }

        var hosts = await ReadHostsAsync(client, cancellationToken);
        var me = hosts.Single(h => h.Host.Uuid == host.Uuid);
        if (me.Host.ResidentVms.Count > 1)
        {
            throw new BaselineFailedException($"{host.Name} still runs {me.Host.ResidentVms.Count - 1} VM(s) after evacuation");
        }

        var previousBoot = me.Host.BootTime;
        await pool.RebootHostAsync(host.Uuid, cancellationToken);
        await WaitBackAsync(client, host, previousBoot, cancellationToken);
    }

    /// <summary>
    /// Xen Orchestra's rolling pool reboot (xo-server src/xapi/mixins/pool.mjs rollingPoolReboot, at vatesfr/xen-orchestra
    /// 9ef53890b8; /work/shared/fidelity/anchors.md §1.3), without the RPU-only steps (patches, guidances) and without its
    /// last phase ("Migrate VMs back"), which the other baselines do not have either. The hosts outside the bench's run
    /// (--hosts) are treated as XO's ignored hosts. XO sorts the hosts as the pool lists them with the master swapped to
    /// the front; here the others are in name order, as in the other baselines.
    /// </summary>
    private async Task XoRollingPoolRebootAsync(XapiPoolConnection pool, XapiClient client, PoolSnapshot snapshot, CancellationToken cancellationToken)
    {
        // 1. HA: record the statefile SRs and ha_configuration, disable, restore at the end (also on failure: golike-defer).
        var ha = snapshot.Ha;
        if (ha.Enabled)
        {
            await pool.DisableHaAsync(cancellationToken);
        }

        try
        {
            // 2. pool.other_config.auto_poweron "true" → "false", restored at the end (update_other_config: remove, then add).
            var autoPowerOn = snapshot.OtherConfig.GetValueOrDefault("auto_poweron") == "true";
            if (autoPowerOn)
            {
                await pool.RemovePoolOtherConfigAsync("auto_poweron", cancellationToken);
                await pool.TryAddPoolOtherConfigAsync("auto_poweron", "false", cancellationToken);
            }

            try
            {
                await XoRestartHostsAsync(pool, client, snapshot, cancellationToken);
            }
            finally
            {
                if (autoPowerOn)
                {
                    await pool.RemovePoolOtherConfigAsync("auto_poweron", cancellationToken);
                    await pool.TryAddPoolOtherConfigAsync("auto_poweron", "true", cancellationToken);
                }
            }
        }
        finally
        {
            if (ha.Enabled)
            {
                // XO's restore: pool.enable_ha(statefile SRs, ha_configuration); failures to tolerate and overcommit are
                // pool fields that disabling HA leaves as they were.
                await pool.EnableHaAsync(ha.HeartbeatSrUuids, ha.Configuration, cancellationToken);
            }
        }
    }

    private async Task XoRestartHostsAsync(XapiPoolConnection pool, XapiClient client, PoolSnapshot snapshot, CancellationToken cancellationToken)
    {
        // 3. Every host must be running (XO's isHostRunning: host_metrics.live).
        if (snapshot.Hosts.FirstOrDefault(h => !h.Live) is { } down)
        {
            throw new BaselineFailedException($"xo-rpr: {down.Name} is not running (XO: incorrectState power_state)");
        }

        var run = snapshot.Hosts.Where(h => onlyHosts is null || onlyHosts.Contains(h.Name)).ToList();

        // 4. Pool-wide precheck, HA being off: blockers other than pinned VMs → host.assert_can_evacuate (its
        // CANNOT_EVACUATE_HOST fails the run); pinned VMs of all hosts → one refusal (shutdownPinnedVms is not set).
        var pinned = new List<string>();
        foreach (var host in run)
        {
            var blockers = await pool.GetVmsPreventingEvacuationAsync(host.Uuid, cancellationToken);
            if (blockers.Values.Any(b => b.Count == 0 || !s_xoPinned.Contains(b[0])))
            {
                await client.CallAsync("host.assert_can_evacuate", [await HostRefAsync(client, host.Uuid, cancellationToken)], cancellationToken);
            }

            pinned.AddRange(blockers.Where(b => b.Value.Count > 0 && s_xoPinned.Contains(b.Value[0])).Select(b => b.Key));
        }

        if (pinned.Count > 0)
        {
            throw new BaselineFailedException($"xo-rpr: {pinned.Count} pinned VM(s) (XO: incorrectState pinnedVms, shutdownPinnedVms not set)");
        }

        // The migration network: pool.other_config['xo:migrationNetwork'] (a network uuid in XO), else the null ref.
        var network = snapshot.OtherConfig.TryGetValue("xo:migrationNetwork", out var networkUuid) && networkUuid.Length > 0
            ? (await client.CallAsync("network.get_by_uuid", [networkUuid], cancellationToken))!.ToString()
            : NullRef;

        // 7. The master swapped to position 0, the others after it (name order here).
        var order = run.OrderBy(h => h.Uuid == snapshot.MasterUuid ? 0 : 1).ThenBy(h => h.Name, NaturalNameComparer.Instance).ToList();

        // 8. Per host.
        foreach (var host in order)
        {
            await log.WriteLineAsync($"    {method}: {host.Name}");
            var hostRef = await HostRefAsync(client, host.Uuid, cancellationToken);
            await XoWaitAsync(pool, client, host, h => h.Live, null, "live", cancellationToken);

            // PR #10097: assert_can_evacuate again, just before clearing the host.
            await client.CallAsync("host.assert_can_evacuate", [hostRef], cancellationToken);

            // clearHost (xo-server src/xapi/index.mjs): host.disable, host.evacuate(host, network, batch); on failure
            // host.enable and rethrow. Trailing parameters an older XAPI does not know are dropped (XAPI 8.2).
            await pool.DisableHostAsync(host.Uuid, cancellationToken);
            try
            {
                object?[] args = [hostRef, network, (long)XoEvacuationConcurrency];
                for (var n = args.Length; ; n--)
                {
                    try
                    {
                        await client.RunTaskAsync("host.evacuate", args[..n], null, cancellationToken);
                        break;
                    }
                    catch (XapiException e) when (e.Code == "MESSAGE_PARAMETER_COUNT_MISMATCH" && n > 1)
                    {
                        // Ask again with one parameter fewer.
                    }
                }
            }
            catch (PoolOperationException)
            {
                await pool.EnableHostAsync(host.Uuid, cancellationToken);
                throw;
            }

            var rebootTime = await pool.GetServerTimeAsync(host.Uuid, cancellationToken);
            await pool.RebootHostAsync(host.Uuid, cancellationToken);

            // restartHostTimeout (20 min): enabled, and a toolstack started after rebootTime; then live.
            await XoWaitAsync(pool, client, host, h => h.Enabled && h.AgentStartTime > rebootTime, s_xoRestartHostTimeout,
                "enabled with agent_start_time after the reboot", cancellationToken);
            await XoWaitAsync(pool, client, host, h => h.Live, null, "live after the reboot", cancellationToken);
        }
    }

    /// <summary>
    /// Waits, through event.from, until <paramref name="done"/> holds for the host. <paramref name="timeout"/> is XO's
    /// (null: XO has none; the bench stops after an hour so a broken run cannot hang it).
    /// </summary>
    private async Task XoWaitAsync(XapiPoolConnection pool, XapiClient client, HostState host, Func<HostState, bool> done, TimeSpan? timeout, string what, CancellationToken cancellationToken)
    {
        var clock = lab.Clock;
        var deadline = clock.GetUtcNow() + (timeout ?? TimeSpan.FromHours(1));
        var token = "";
        while (true)
        {
            if (clock.GetUtcNow() > deadline)
            {
                throw new BaselineFailedException($"xo-rpr: {host.Name} not {what} within {Units.Duration((timeout ?? TimeSpan.FromHours(1)).TotalSeconds)}");
            }

            try
            {
                if (done(await pool.ReadHostAsync(host.Uuid, cancellationToken)))
                {
                    return;
                }

                var batch = await client.CallAsync("event.from", [new[] { "host", "host_metrics" }, token, 30.0], cancellationToken, TimeSpan.FromSeconds(30));
                token = batch?["token"]?.ToString() ?? token;
            }
            catch (PoolOperationException)
            {
                // The master is rebooting or its toolstack is starting: ask again shortly.
                token = "";
                await Task.Delay(TimeSpan.FromSeconds(1), clock, cancellationToken);
            }
        }
    }

    private static async Task<string> HostRefAsync(XapiClient client, string uuid, CancellationToken cancellationToken) =>
        (await client.CallAsync("host.get_by_uuid", [uuid], cancellationToken))?.ToString()
        ?? throw new BaselineFailedException($"no host {uuid}");

    /// <summary>Each VM, largest first, to the enabled live host with the most free memory (rebooted or not).</summary>
    private static async Task MigrateAwayAsync(XapiPoolConnection pool, HostState host, int parallel, CancellationToken cancellationToken)
    {
        var snapshot = await pool.ReadAsync(cancellationToken);
        var vms = snapshot.RunningOn(host.Uuid).OrderByDescending(v => v.MemoryBytes).ThenBy(v => v.Name, StringComparer.Ordinal).ToList();
        var free = snapshot.Hosts.Where(h => h.Uuid != host.Uuid && h.Enabled && h.Live).ToDictionary(h => h.Uuid, h => h.MemoryFree);
        var names = snapshot.Hosts.ToDictionary(h => h.Uuid, h => h.Name);
        using var gate = new SemaphoreSlim(parallel);
        var tasks = vms.Select(async vm =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                string target;
                lock (free)
                {
                    target = free.Where(kv => kv.Value >= vm.MemoryBytes).OrderByDescending(kv => kv.Value).ThenBy(kv => names[kv.Key], StringComparer.Ordinal)
                        .Select(kv => kv.Key).FirstOrDefault()
                        ?? throw new BaselineFailedException($"no enabled host has room for {vm.Name} ({Units.Memory(vm.MemoryBytes)}) while evacuating {host.Name}");
                    free[target] -= vm.MemoryBytes;
                }

                await pool.MigrateVmAsync(vm.Uuid, target, null, cancellationToken);
            }
            finally
            {
                gate.Release();
            }
        }).ToList();
        await Task.WhenAll(tasks);
    }

    private static async Task<List<(XapiHostRecord Host, bool Live)>> ReadHostsAsync(XapiClient client, CancellationToken cancellationToken)
    {
        var hosts = await client.AllRecordsAsync("host", XapiHostRecord.From, cancellationToken);
        var metrics = (await client.AllRecordsAsync("host_metrics", XapiHostMetricsRecord.From, cancellationToken)).ToDictionary(m => m.Ref);
        return hosts.Select(h => (h, metrics.TryGetValue(h.Metrics, out var m) && m.Live)).ToList();
    }

    /// <summary>Back = a boot time newer than before the reboot, live, and enabled again (the host enables itself).</summary>
    private async Task WaitBackAsync(XapiClient client, HostState host, DateTimeOffset? previousBoot, CancellationToken cancellationToken)
    {
        var clock = lab.Clock;
        var deadline = clock.GetUtcNow() + TimeSpan.FromHours(1);
        var token = "";
        var enableAsked = false;
        while (true)
        {
            if (clock.GetUtcNow() > deadline)
            {
                throw new BaselineFailedException($"{host.Name} did not come back within an hour");
            }

            try
            {
                var me = (await ReadHostsAsync(client, cancellationToken)).Single(h => h.Host.Uuid == host.Uuid);
                if (me.Live && me.Host.BootTime > previousBoot)
                {
                    if (me.Host.Enabled)
                    {
                        return;
                    }

                    if (!enableAsked && me.Host.CurrentOperations.Count == 0 && me.Host.AgentStartTime > me.Host.BootTime)
                    {
                        // The toolstack is up but the host stayed disabled: enable it.
                        enableAsked = true;
                        await client.CallAsync("host.enable", [me.Host.Ref], cancellationToken);
                        continue;
                    }
                }

                var batch = await client.CallAsync("event.from", [new[] { "host", "host_metrics" }, token, 30.0], cancellationToken, TimeSpan.FromSeconds(30));
                token = batch?["token"]?.ToString() ?? token;
            }
            catch (PoolOperationException)
            {
                // The master is rebooting or its toolstack is starting: ask again shortly.
                token = "";
                await Task.Delay(TimeSpan.FromSeconds(1), clock, cancellationToken);
            }
        }
    }
}

public sealed class BaselineFailedException : Exception
{
    public BaselineFailedException()
    {
    }

    public BaselineFailedException(string message) : base(message)
    {
    }

    public BaselineFailedException(string message, Exception inner) : base(message, inner)
    {
    }
}
