using System.Diagnostics;

namespace RollingReboot.Core.Time;

/// <summary>
/// A clock that runs <see cref="Scale"/> times faster than the wall clock from a shared origin, so the
/// lab and the CLI agree on simulated time: every timeout and estimate then means simulated seconds.
/// </summary>
public sealed class ScaledTimeProvider : TimeProvider
{
    private readonly DateTimeOffset _originSimulated;
    private readonly long _originTimestamp;

    public ScaledTimeProvider(double scale, DateTimeOffset originSimulated, DateTimeOffset originWall)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(scale);
        Scale = scale;
        _originSimulated = originSimulated;
        // Anchor on the monotonic clock so wall-clock jumps do not move simulated time.
        var wallNow = System.GetUtcNow();
        var sinceOrigin = wallNow - originWall;
        _originTimestamp = Stopwatch.GetTimestamp() - (long)(sinceOrigin.TotalSeconds * Stopwatch.Frequency);
    }

    public double Scale { get; }

    public override DateTimeOffset GetUtcNow()
    {
        var wallElapsed = Stopwatch.GetElapsedTime(_originTimestamp);
        return _originSimulated + TimeSpan.FromTicks((long)(wallElapsed.Ticks * Scale));
    }

    public override long GetTimestamp() => (long)(Stopwatch.GetTimestamp() * Scale);

    public override long TimestampFrequency => Stopwatch.Frequency;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        new ScaledTimer(this, System.CreateTimer(callback, state, ToWall(dueTime), ToWall(period)));

    /// <summary>How long a simulated span lasts on the wall clock.</summary>
    public TimeSpan ToWall(TimeSpan simulated) =>
        simulated == Timeout.InfiniteTimeSpan ? simulated : TimeSpan.FromTicks((long)(simulated.Ticks / Scale));
}

internal sealed class ScaledTimer(ScaledTimeProvider clock, ITimer inner) : ITimer
{
    public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(clock.ToWall(dueTime), clock.ToWall(period));

    public void Dispose() => inner.Dispose();

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
