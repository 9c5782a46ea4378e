using Polly;
using Polly.Retry;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Journal;

namespace RollingReboot.Core.Run.Engine;

/// <summary>
/// Every state-changing call of the run goes through here: intent journaled, call, end journaled, each applied to the
/// state. Idempotent calls (set a state that is then simply set) and reads are retried while the pool is away
/// (<see cref="PoolOperationException.IsTransient"/>), bounded by the outage tolerance; a migration or a reboot never
/// is: their callers look at the pool and decide.
/// </summary>
public sealed class ChangeExecutor
{
    private static readonly TimeSpan s_retryDelay = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan s_stillBootingDelay = TimeSpan.FromSeconds(1);
    private readonly RunRecorder _recorder;
    private readonly ResiliencePipeline _whileAway;

    public ChangeExecutor(RunRecorder recorder, TimeProvider clock, TimeSpan outageTolerance, IRunLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        _recorder = recorder;
        // Built once, on the run's clock (the lab's scaled one, a fake one in tests).
        _whileAway = new ResiliencePipelineBuilder { TimeProvider = clock }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<PoolOperationException>(e => e.IsTransient),
                BackoffType = DelayBackoffType.Constant,
                Delay = s_retryDelay,
                // A host whose toolstack is finishing its start (host.enable refused until xapi signals its startup complete:
                // xapi_host.ml assert_safe_to_reenable -> xapi_host_helpers.ml assert_startup_complete) is asked again every second, so a
                // host that is back is enabled, and the next one started, within a second of it being ready.
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(
                    args.Outcome.Exception is PoolOperationException { Code: "HOST_STILL_BOOTING" } ? s_stillBootingDelay : null),
                MaxRetryAttempts = Math.Max(1, (int)Math.Ceiling(outageTolerance / s_retryDelay)),
                UseJitter = false,
                OnRetry = args =>
                {
                    log.Warn("XAPI not answering ({Error}); asking again", (args.Outcome.Exception as PoolOperationException)?.Code);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }

    public Run.State.RunState State => _recorder.State;

    /// <summary>A journal line that is not a change (a decision, a host finished, an operator action).</summary>
    public void Record(RunEvent e) => _recorder.Append(e);

    /// <summary>A read that rides through the pool being away for a while.</summary>
    public async Task<T> ReadAsync<T>(Func<CancellationToken, Task<T>> read, CancellationToken cancellationToken) =>
        await _whileAway.ExecuteAsync(async ct => await Answered(read, ct), cancellationToken);

    /// <summary>
    /// A call that got no answer in time (an adapter's own timeout: TimeoutException, or a cancellation the run did
    /// not ask for) is the pool not answering, as a lost connection is: never an "unexpected error".
    /// </summary>
    public static async Task<T> Answered<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call(cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new PoolOperationException("TIMEOUT", [], "no answer in time (" + e.Message + ")", e) { Kind = PoolErrorKind.Unreachable };
        }
    }

    private static Task Answered(Func<CancellationToken, Task> call, CancellationToken cancellationToken) =>
        Answered(async ct =>
        {
            await call(ct);
            return true;
        }, cancellationToken);

    /// <summary>A change safe to repeat: retried while the pool is away.</summary>
    public async Task DoAsync(RunEvent? intent, Func<CancellationToken, Task> call, RunEvent? done, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        if (intent is not null)
        {
            _recorder.Append(intent);
        }

        await _whileAway.ExecuteAsync(async ct => await Answered(call, ct), cancellationToken);
        if (done is not null)
        {
            _recorder.Append(done);
        }
    }

    /// <summary>A change that must not be repeated blindly (a migration, a reboot): one call; on failure the caller decides.</summary>
    public async Task<T> DoOnceAsync<T>(RunEvent? intent, Func<CancellationToken, Task<T>> call, Func<T, RunEvent?> done, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        ArgumentNullException.ThrowIfNull(done);
        if (intent is not null)
        {
            _recorder.Append(intent);
        }

        var result = await Answered(call, cancellationToken);
        if (done(result) is { } end)
        {
            _recorder.Append(end);
        }

        return result;
    }

    public async Task DoOnceAsync(RunEvent? intent, Func<CancellationToken, Task> call, RunEvent? done, CancellationToken cancellationToken) =>
        await DoOnceAsync<bool>(intent, async ct =>
        {
            await call(ct);
            return true;
        }, _ => done, cancellationToken);
}
