using RollingReboot.Xapi.Tls;

namespace RollingReboot.Xapi;

public sealed class XapiClientOptions
{
    /// <summary>Any host of the pool; the client follows HOST_IS_SLAVE to the master.</summary>
    public required Uri Url { get; init; }

    public required string UserName { get; init; }

    /// <summary>Never logged, never shown.</summary>
    public required string Password { get; init; }

    public XapiCertificatePolicy Certificates { get; init; } = new();

    /// <summary>Wall-clock limit for one HTTP exchange (long polls get their own timeout added).</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one search for the master may take (all known hosts tried, with backoff).</summary>
    public TimeSpan MasterSearchTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public string Originator { get; init; } = "rollreboot";

    /// <summary>The clock for backoff delays (the lab's scaled clock in rehearsals).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// With at least <see cref="TaskCoalesceFrom"/> tasks waited on, the task watch asks for the next batch of events no
    /// sooner than this after a batch in which none of them finished, unless a task is expected to end sooner at the rate
    /// its progress moved: progress of many migrations arrives in few calls (xapi publishes a task's progress as xenopsd
    /// reports it, xapi_xenops.ml update_task -> Db.Task.set_progress, each one an event), and with that many streams
    /// a source's link stays full while one slot waits. Fewer tasks in flight are watched without a pause, so the end of an
    /// evacuation is seen at once. Zero: never pause.
    /// </summary>
    public TimeSpan TaskProgressInterval { get; init; } = DefaultTaskProgressInterval;

    /// <summary>The default of <see cref="TaskProgressInterval"/>.</summary>
    public static readonly TimeSpan DefaultTaskProgressInterval = TimeSpan.FromSeconds(15);

    public int TaskCoalesceFrom { get; init; } = 3;

    /// <summary>Whether the watch's pause ends when a task is expected to end (on by default; off, it always pauses
    /// <see cref="TaskProgressInterval"/>).</summary>
    public bool TaskEndEstimates { get; init; } = true;

    public override string ToString() => $"{UserName}@{Url}";
}
