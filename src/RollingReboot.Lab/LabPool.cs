using System.Text.Json.Nodes;
using RollingReboot.Lab.CloudStack;
using RollingReboot.Lab.Scenario;
using RollingReboot.Lab.Sim;

namespace RollingReboot.Lab;

/// <summary>
/// One simulated pool of a running lab (a lab runs one, or several for a fleet): its simulation, its audit and, when
/// its scenario has a <c>cloudstack</c> section, its cluster in the lab's one CloudStack.
/// </summary>
public sealed class LabPool : ISimEnvironment
{
    private readonly LabRuntime _runtime;

    internal LabPool(LabRuntime runtime, int index, SimPool sim, LabAudit audit)
    {
        _runtime = runtime;
        Index = index;
        Sim = sim;
        Audit = audit;
    }

    /// <summary>The pool's name (the scenario's <c>pool.name</c>), unique in the lab.</summary>
    public string Name => Sim.Scenario.Pool.Name;

    /// <summary>0 for the first scenario given, and so on.</summary>
    public int Index { get; }

    public LabAudit Audit { get; }

    /// <summary>This pool's audit (the first pool's is the lab's <c>auditUrl</c>).</summary>
    public Uri AuditUrl { get; internal set; } = null!;

    /// <summary>The pool's cluster in the lab's CloudStack, null when its scenario has no <c>cloudstack</c> section.</summary>
    public LabCloudStackCluster? CloudStack { get; internal set; }

    /// <summary>Every host's loopback address, in scenario order.</summary>
    public IReadOnlyList<string> HostAddresses => Sim.Hosts.Select(h => h.Address).ToList();

    internal SimPool Sim { get; }

    /// <summary>The audit document of this pool, as its audit URL serves it.</summary>
    public JsonObject AuditJson()
    {
        JsonObject pool;
        JsonArray hosts;
        JsonArray vms;
        double now;
        lock (Sim.Gate)
        {
            Sim.Advance();
            now = Sim.Now;
            pool = new JsonObject
            {
                ["name"] = Sim.Scenario.Pool.Name,
                ["master"] = Sim.Master.Name,
                ["haEnabled"] = Sim.HaEnabled,
                ["haConfiguration"] = new JsonObject(Sim.HaConfiguration.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["haHeartbeatSrs"] = new JsonArray(Sim.HaHeartbeatSrNames.Select(n => (JsonNode?)n).ToArray()),
                ["haHostFailuresToTolerate"] = Sim.HaHostFailuresToTolerate,
                ["haAllowOvercommit"] = Sim.HaAllowOvercommit,
                ["otherConfig"] = new JsonObject(Sim.PoolOtherConfig.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            };
            hosts = new JsonArray(Sim.Hosts.Select(h => (JsonNode?)new JsonObject
            {
                ["name"] = h.Name,
                ["uuid"] = h.Uuid,
                ["address"] = h.Address,
                ["memoryMiB"] = h.MemoryTotal / LabMemory.MiB,
                ["freeMiB"] = Sim.FreeBytes(h) / LabMemory.MiB,
                ["enabled"] = h.Enabled,
                // Lab extension: false after host.disable auto_enable=false (xapi 25.31.0+) until host.enable.
                ["autoEnable"] = h.AutoEnable,
                ["live"] = h.Live,
                ["bootCount"] = h.BootCount,
                ["pendingGuidances"] = new JsonArray(h.PendingGuidances.Select(g => (JsonNode?)g).ToArray()),
                ["pendingGuidancesRecommended"] = new JsonArray(h.PendingGuidancesRecommended.Select(g => (JsonNode?)g).ToArray()),
                // Lab extension: the scenario's pool.updates still pending and those the lab installed, in order.
                ["updatesPending"] = new JsonArray(h.PendingUpdates.Select(u => (JsonNode?)u).ToArray()),
                ["updatesInstalled"] = new JsonArray(h.InstalledUpdates.Select(u => (JsonNode?)u).ToArray()),
                ["liveVersions"] = new JsonObject(h.LiveVersions.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            }).ToArray());
            vms = new JsonArray(Sim.Vms.Where(v => !v.IsControlDomain).Select(v => (JsonNode?)new JsonObject
            {
                ["name"] = v.Name,
                ["uuid"] = v.Uuid,
                ["memoryMiB"] = v.MemoryMiB,
                ["powerState"] = v.PowerState,
                ["residentOn"] = v.ResidentOn?.Name,
                ["migrations"] = v.Migrations,
                ["pendingGuidances"] = new JsonArray(v.PendingGuidances.Select(g => (JsonNode?)g).ToArray()),
                ["pendingGuidancesRecommended"] = new JsonArray(v.PendingGuidancesRecommended.Select(g => (JsonNode?)g).ToArray()),
            }).ToArray());
        }

        var (events, violations) = Audit.Snapshot();
        return new JsonObject
        {
            ["simulatedSeconds"] = Math.Round(now, 3),
            ["timeScale"] = _runtime.TimeScale,
            ["pool"] = pool,
            ["cloudstack"] = CloudStack is null ? null : System.Text.Json.JsonSerializer.SerializeToNode(CloudStack.AuditSnapshot()),
            ["hosts"] = hosts,
            ["vms"] = vms,
            ["events"] = events,
            ["violations"] = violations,
        };
    }

    public override string ToString() => $"LabPool({Name}, {Sim.Hosts.Count} hosts)";

    void ISimEnvironment.XapiServing(SimHost host, bool serving) => _runtime.XapiServing(this, host, serving);

    void ISimEnvironment.HostPowered(SimHost host, bool up) => _runtime.HostPowered(this, host, up);

    void ISimEnvironment.SshAnswering(SimHost host, string bootId) => _runtime.SshAnswering(this, host, bootId);
}
