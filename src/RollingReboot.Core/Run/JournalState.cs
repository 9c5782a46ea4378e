using System.Globalization;
using System.Text.Json.Nodes;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Run;

/// <summary>
/// What a journal says the run changed and has not put back: the basis of <c>resume</c> and <c>restore</c>.
/// Pure: a fold over the journal's lines.
/// </summary>
public sealed record JournalState(
    string RunId,
    string PoolUuid,
    string? Cluster,
    bool Ended,
    OriginalState? Original,
    bool LockHeld,
    bool HaDisabledByRun,
    bool UnmanagedByRun,
    IReadOnlySet<string> DisabledByRun,
    IReadOnlyDictionary<string, long?> RebootRequestedBootTime,
    IReadOnlySet<string> HostsDone)
{
    /// <summary>Hosts whose host.reboot call returned (the reboot was taken).</summary>
    public IReadOnlySet<string> RebootCalled { get; init; } = new HashSet<string>();

    /// <summary>Hosts a pre hook skipped (exit 70): a resumed run leaves them alone too.</summary>
    public IReadOnlySet<string> SkippedByHook { get; init; } = new HashSet<string>();

    /// <summary>What the run was started as: "run" (a rolling reboot), "evacuate" or "return".</summary>
    public string Mode { get; init; } = "run";

    /// <summary>Server time and SSH boot id recorded just before each reboot.</summary>
    public IReadOnlyDictionary<string, (DateTimeOffset? ServerTime, string? BootId)> RebootContext { get; init; } =
        new Dictionary<string, (DateTimeOffset?, string?)>();

    public static JournalState From(IReadOnlyList<JsonObject> lines)
    {
        try
        {
            return Fold(lines);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or System.Text.Json.JsonException or ArgumentException or NullReferenceException)
        {
            throw new JournalException("the journal is damaged: a line has a field of the wrong type (" + e.Message + ")");
        }
    }

    private static JournalState Fold(IReadOnlyList<JsonObject> lines)
    {
        if (lines.Count == 0)
        {
            throw new JournalException("the journal is empty");
        }

        var start = lines[0];
        var runId = start["runId"]?.ToString() ?? throw new JournalException("run.start has no runId");
        var poolUuid = start["pool"]?.ToString() ?? throw new JournalException("run.start has no pool");
        OriginalState? original = null;
        bool ended = false, lockHeld = false, haOff = false, unmanaged = false;
        var disabled = new HashSet<string>();
        var reboots = new Dictionary<string, long?>();
        var done = new HashSet<string>();
        var skipped = new HashSet<string>();
        var called = new HashSet<string>();
        var context = new Dictionary<string, (DateTimeOffset?, string?)>();
        foreach (var l in lines)
        {
            var host = l["host"]?.ToString();
            switch (l["kind"]?.ToString())
            {
                case "originals":
                    original = ParseOriginals(l);
                    break;
                case "lock.acquired":
                    lockHeld = true;
                    break;
                case "lock.released":
                    lockHeld = false;
                    break;
                case "ha.disable.done":
                    haOff = true;
                    break;
                case "ha.enable.done":
                    haOff = false;
                    break;
                case "cloudstack.unmanage.intent":
                    unmanaged = true;
                    break;
                case "cloudstack.manage.done":
                    unmanaged = false;
                    break;
                case "host.disable.intent" when host is not null:
                    disabled.Add(host);
                    break;
                case "host.enable.done" when host is not null:
                    disabled.Remove(host);
                    break;
                case "host.reboot.intent" when host is not null:
                    reboots[host] = l["bootTime"] is JsonValue v && v.TryGetValue<long>(out var ms) ? ms : null;
                    context[host] = (
                        Time.IsoMoment.TryParse(l["serverTime"]?.ToString(), out var st) ? st : null,
                        l["bootId"]?.ToString());
                    break;
                case "host.reboot.done" when host is not null:
                    called.Add(host);
                    break;
                case "host.done" when host is not null:
                    done.Add(host);
                    break;
                case "host.skipped" when host is not null:
                    skipped.Add(host);
                    break;
                case "run.end":
                    ended = true;
                    break;
            }
        }

        return new JournalState(runId, poolUuid, start["cluster"]?.ToString(), ended, original, lockHeld, haOff, unmanaged, disabled, reboots, done)
        {
            RebootCalled = called,
            RebootContext = context,
            Mode = start["mode"]?.ToString() ?? "run",
            SkippedByHook = skipped,
        };
    }

    /// <summary>Hosts this run rebooted: their boot time moved past the one recorded before the reboot.</summary>
    public IReadOnlySet<string> RebootedIn(PoolSnapshot pool)
    {
        var result = new HashSet<string>(HostsDone);
        foreach (var (host, before) in RebootRequestedBootTime)
        {
            var now = pool.Hosts.FirstOrDefault(h => h.Uuid == host)?.BootTime?.ToUnixTimeMilliseconds();
            if (now is not null && (before is null || now > before))
            {
                result.Add(host);
            }
        }

        return result;
    }

    private static OriginalState ParseOriginals(JsonObject l)
    {
        var ha = l["ha"] as JsonObject ?? throw new JournalException("originals without ha");
        var settings = new HaSettings(
            ha["enabled"]?.GetValue<bool>() ?? false,
            (ha["heartbeatSrs"] as JsonArray)?.Select(n => n!.ToString()).ToList() ?? [],
            (ha["configuration"] as JsonObject)?.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "") ?? [],
            ha["hostFailuresToTolerate"]?.GetValue<long>() ?? 0,
            ha["allowOvercommit"]?.GetValue<bool>() ?? false);
        var enabled = (l["hostEnabled"] as JsonObject)?.ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<bool>() ?? true) ?? [];
        var vmHost = (l["vmHost"] as JsonObject)?.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString()) ?? [];
        return new OriginalState(settings, l["cloudstackManagedState"]?.ToString(), enabled, vmHost, l["autoPowerOn"]?.ToString());
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"run {RunId} on pool {PoolUuid}");
}
