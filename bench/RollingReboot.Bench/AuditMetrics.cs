using System.Text.Json.Nodes;

namespace RollingReboot.Bench;

/// <summary>What the lab's audit says about one run, in simulated seconds.</summary>
public sealed record AuditMetrics
{
    public double FirstEventAt { get; init; }

    public double LastEventAt { get; init; }

    /// <summary>First state-changing event to the last (the contract's makespan).</summary>
    public double MakespanSeconds => LastEventAt - FirstEventAt;

    /// <summary>First host.disable to the last host's toolstack being ready.</summary>
    public double HostsPhaseSeconds { get; init; }

    public int Migrations { get; init; }

    public int FailedMigrations { get; init; }

    /// <summary>Bytes that crossed the wire (memory × (1 + dirtyRatio)) for migrations that succeeded.</summary>
    public double WireBytes { get; init; }

    /// <summary>Time with at least one migration in flight.</summary>
    public double MigratingSeconds { get; init; }

    /// <summary>Time with no migration in flight but a host between host.reboot and its toolstack being ready.</summary>
    public double RebootOnlySeconds { get; init; }

    /// <summary>Time with neither: only the tool was working (reads, planning, probes, HA/CloudStack calls, waiting).</summary>
    public double ToolOnlySeconds { get; init; }

    /// <summary>Per rebooted host: its toolstack ready (host usable again) to the tool's next action, any host.</summary>
    public IReadOnlyList<HostGap> BackToNextAction { get; init; } = [];

    /// <summary>Per rebooted host: host.up to the tool's next action.</summary>
    public IReadOnlyList<HostGap> UpToNextAction { get; init; } = [];

    /// <summary>Per evacuation (a source host in one step): first migration off it to the last one ending, and what moved.</summary>
    public IReadOnlyList<Evacuation> Evacuations { get; init; } = [];

    public IReadOnlyList<string> Violations { get; init; } = [];

    public int HostsRebooted { get; init; }

    public int VmsRunning { get; init; }

    public int VmsTotal { get; init; }

    public string HaAtEnd { get; init; } = "";

    public string CloudStackAtEnd { get; init; } = "";

    private static readonly HashSet<string> s_toolActions =
    [
        "host.disable", "host.enable", "host.reboot", "host.shutdown", "host.evacuate", "migration.start", "ha.disable", "ha.enable",
        "ha.setHostFailuresToTolerate", "ha.setAllowOvercommit", "pool.otherConfig.add", "pool.otherConfig.remove", "cloudstack.managedState",
    ];

    public static AuditMetrics From(JsonObject audit)
    {
        var events = (audit["events"] as JsonArray ?? []).OfType<JsonObject>()
            .Select(e => (T: e["t"]!.GetValue<double>(), Type: e["type"]!.GetValue<string>(), E: e))
            .Where(e => e.Type != "violation")
            .ToList();
        var first = events.Count > 0 ? events.Min(e => e.T) : 0;
        var last = events.Count > 0 ? events.Max(e => e.T) : 0;

        // Migrations: pair each start with the end of the same VM. An evacuation is a source host's successful
        // migrations in one step: those started after its k-th host.reboot (or shutdown) and before the next.
        var open = new Dictionary<string, (double T, double Bytes, string From, int Step)>();
        var migrationIntervals = new List<(double A, double B)>();
        var evac = new Dictionary<(string From, int Step), (double Start, double End, double Bytes, int Count)>();
        var rebootsOf = new Dictionary<string, int>();
        int ok = 0, failed = 0;
        double wire = 0;
        foreach (var (t, type, e) in events)
        {
            var vm = e["vm"]?.GetValue<string>() ?? "";
            if (type is "host.reboot" or "host.shutdown")
            {
                var h = e["host"]?.GetValue<string>() ?? "";
                rebootsOf[h] = rebootsOf.GetValueOrDefault(h) + 1;
            }
            else if (type == "migration.start")
            {
                var from = e["from"]?.GetValue<string>() ?? "";
                open[vm] = (t, e["bytes"]?.GetValue<double>() ?? 0, from, rebootsOf.GetValueOrDefault(from));
            }
            else if (type == "migration.end" && open.Remove(vm, out var s))
            {
                migrationIntervals.Add((s.T, t));
                if (e["ok"]?.GetValue<bool>() == true)
                {
                    ok++;
                    wire += s.Bytes;
                    var prev = evac.TryGetValue((s.From, s.Step), out var p) ? p : (Start: s.T, End: t, Bytes: 0.0, Count: 0);
                    evac[(s.From, s.Step)] = (Math.Min(prev.Start, s.T), Math.Max(prev.End, t), prev.Bytes + s.Bytes, prev.Count + 1);
                }
                else
                {
                    failed++;
                }
            }
        }

        // Reboots: host.reboot to host.toolstackReady of the same host.
        var rebootAt = new Dictionary<string, double>();
        var rebootIntervals = new List<(double A, double B)>();
        var back = new List<HostGap>();
        var up = new List<HostGap>();
        for (var i = 0; i < events.Count; i++)
        {
            var (t, type, e) = events[i];
            var host = e["host"]?.GetValue<string>() ?? "";
            if (type == "host.reboot")
            {
                rebootAt[host] = t;
            }
            else if (type == "host.toolstackReady" && rebootAt.Remove(host, out var r))
            {
                rebootIntervals.Add((r, t));
                back.Add(new HostGap(host, t, NextToolAction(events, i, t)));
            }
            else if (type == "host.up")
            {
                up.Add(new HostGap(host, t, NextToolAction(events, i, t)));
            }
        }

        foreach (var (_, r) in rebootAt)
        {
            // A reboot that never finished counts to the end.
            rebootIntervals.Add((r, last));
        }

        var (migrating, rebootOnly, toolOnly) = Sweep(first, last, migrationIntervals, rebootIntervals);
        var firstDisable = events.Where(e => e.Type == "host.disable").Select(e => e.T).DefaultIfEmpty(first).Min();
        var lastReady = events.Where(e => e.Type == "host.toolstackReady").Select(e => e.T).DefaultIfEmpty(last).Max();

        var vms = (audit["vms"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var hosts = (audit["hosts"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var pool = audit["pool"] as JsonObject;
        return new AuditMetrics
        {
            FirstEventAt = first,
            LastEventAt = last,
            HostsPhaseSeconds = lastReady - firstDisable,
            Migrations = ok,
            FailedMigrations = failed,
            WireBytes = wire,
            MigratingSeconds = migrating,
            RebootOnlySeconds = rebootOnly,
            ToolOnlySeconds = toolOnly,
            BackToNextAction = back,
            UpToNextAction = up,
            Evacuations = evac.OrderBy(kv => kv.Value.Start).Select(kv => new Evacuation(kv.Key.From, kv.Value.Start, kv.Value.End, kv.Value.Bytes, kv.Value.Count)).ToList(),
            Violations = (audit["violations"] as JsonArray ?? []).Select(v => v?.GetValue<string>() ?? "").ToList(),
            HostsRebooted = hosts.Count(h => (h["bootCount"]?.GetValue<int>() ?? 0) > 0),
            VmsRunning = vms.Count(v => v["powerState"]?.GetValue<string>() == "Running"),
            VmsTotal = vms.Count,
            HaAtEnd = pool?["haEnabled"]?.GetValue<bool>() == true ? "on" : "off",
            CloudStackAtEnd = audit["cloudstack"]?["managedState"]?.GetValue<string>() ?? "-",
        };
    }

    private static double? NextToolAction(List<(double T, string Type, JsonObject E)> events, int from, double t)
    {
        for (var j = from + 1; j < events.Count; j++)
        {
            if (s_toolActions.Contains(events[j].Type) && events[j].T >= t)
            {
                return events[j].T - t;
            }
        }

        return null;
    }

    private static (double Migrating, double RebootOnly, double ToolOnly) Sweep(double first, double last, List<(double A, double B)> migrations, List<(double A, double B)> reboots)
    {
        var points = new SortedSet<double> { first, last };
        foreach (var (a, b) in migrations.Concat(reboots))
        {
            points.Add(Math.Clamp(a, first, last));
            points.Add(Math.Clamp(b, first, last));
        }

        double m = 0, r = 0, tool = 0;
        var list = points.ToList();
        for (var i = 0; i + 1 < list.Count; i++)
        {
            var (a, b) = (list[i], list[i + 1]);
            var mid = (a + b) / 2;
            if (migrations.Any(x => x.A <= mid && mid < x.B))
            {
                m += b - a;
            }
            else if (reboots.Any(x => x.A <= mid && mid < x.B))
            {
                r += b - a;
            }
            else
            {
                tool += b - a;
            }
        }

        return (m, r, tool);
    }
}

public sealed record HostGap(string Host, double At, double? Seconds);

public sealed record Evacuation(string Host, double Start, double End, double Bytes, int Migrations)
{
    public double Seconds => End - Start;

    /// <summary>
    /// Link utilisation: the bytes moved ÷ what the source host's link could carry from the first migration.start to
    /// the last migration.end (<paramref name="hostLinkMBps"/> × 10^6 bytes per second); null for a zero-length window.
    /// </summary>
    public double? LinkUse(double hostLinkMBps) => Seconds > 0 && hostLinkMBps > 0 ? Bytes / (hostLinkMBps * 1e6 * Seconds) : null;
}
