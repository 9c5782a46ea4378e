using RollingReboot.Core.Run.State;

namespace RollingReboot.Core.Tests.Run.Fakes;

/// <summary>A state as comparable text (records holding collections compare by reference).</summary>
internal static class StateDigest
{
    public static string Of(RunState s) => string.Join("\n",
        $"run {s.RunId} pool {s.PoolUuid} mode {s.Mode} ended {s.Ended} paused {s.Paused}",
        $"lock {s.Lock} ha {s.HaOff} cluster {s.ClusterUnmanaged} original {s.Original is not null}",
        string.Join(";", s.Hosts.Values.OrderBy(h => h.Uuid, StringComparer.Ordinal).Select(h => $"{h.Uuid}:{h.Phase}:{h.DisabledByRun}:{h.Proof}")),
        string.Join(";", s.Markers.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => m.Key + "=" + m.Value)),
        string.Join(";", s.MigrationsInFlight.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => m.Key + ">" + m.Value)),
        string.Join(";", s.Rebooted.Order(StringComparer.Ordinal)),
        string.Join(";", s.OperatorActions),
        s.Finished.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
