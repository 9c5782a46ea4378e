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
/// </summary>
public sealed class Baseline(LabRuntime lab, string method, IReadOnlyCollection<string>? onlyHosts, TextWriter log)
{
    public const string Evacuate = "evacuate";
    public const string Greedy = "greedy5";
    public const string Sequential = "sequential";

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
