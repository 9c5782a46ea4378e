using RollingReboot.Core.Ports;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run.Sweep;

/// <summary>What strikes one call of the pool or of CloudStack.</summary>
public enum FaultKind
{
    /// <summary>XAPI / CloudStack refuses before doing anything (INTERNAL_ERROR, CloudStack 530).</summary>
    Refused,

    /// <summary>The connection fails before the call reaches the server (retried by the run where safe).</summary>
    Unreachable,

    /// <summary>The call is done, then its reply is lost (a connection reset): the caller cannot tell.</summary>
    ReplyLost,

    /// <summary>The call times out on the client before any reply: an HTTP timeout's TaskCanceledException.</summary>
    Timeout,

    /// <summary>The process dies (kill -9) before the call: the pool is left as it is, then 'resume' or 'restore'.</summary>
    Crash,
}

/// <summary>
/// Counts the calls of one run, pool and CloudStack alike, and strikes the one numbered <see cref="StrikeAt"/> with
/// <see cref="Kind"/>. Waiting for a change is not counted (it is the run's idle, not a step).
/// </summary>
internal sealed class FaultInjector(FakePool pool)
{
    private int _calls;

    public int? StrikeAt { get; set; }

    public FaultKind Kind { get; set; }

    /// <summary>Every counted call, in order, by name (what a case's report names).</summary>
    public List<string> Calls { get; } = [];

    public string? Struck { get; private set; }

    /// <summary>What dies with the process besides the pool (the journal, CloudStack's side of the run).</summary>
    public Action? OnCrash { get; set; }

    public bool Crashed { get; private set; }

    public int Count => _calls;

    /// <summary>Before a call: throws when this is the call to strike, unless the fault comes after the call (reply lost).</summary>
    public bool Before(string name, bool cloud)
    {
        if (Crashed)
        {
            // A dead process calls nothing.
            throw new SimulatedCrash();
        }

        int n = Interlocked.Increment(ref _calls);
        lock (Calls)
        {
            Calls.Add(name);
        }

        if (StrikeAt != n)
        {
            return false;
        }

        Struck = name;
        switch (Kind)
        {
            case FaultKind.Crash:
                Crashed = true;
                pool.Freeze();
                OnCrash?.Invoke();
                throw new SimulatedCrash();
            case FaultKind.Refused:
                throw cloud ? new CloudStackException(530, 9999, $"injected failure of {name}") : new PoolOperationException("INTERNAL_ERROR", ["injected"], $"injected failure of {name}") { Kind = PoolErrorKind.Refused };
            case FaultKind.Unreachable:
                throw cloud ? new CloudStackException(0, 0, $"injected connection failure of {name}", new HttpRequestException("Connection refused")) : new PoolOperationException("UNREACHABLE", [], $"injected connection failure of {name}") { Kind = PoolErrorKind.Unreachable };
            case FaultKind.Timeout:
                throw new TaskCanceledException($"injected timeout of {name}", new TimeoutException("The request was canceled due to the configured HttpClient.Timeout"));
            default:
                return true;
        }
    }

    /// <summary>After a call whose reply is to be lost.</summary>
    public static Exception Lost(string name, bool cloud) =>
        cloud ? new CloudStackException(0, 0, $"injected lost reply of {name}", new IOException("Connection reset by peer"))
              : new PoolOperationException("UNREACHABLE", [], $"injected lost reply of {name}") { Kind = PoolErrorKind.Unreachable };
}
