using System.Text.Json.Nodes;

namespace RollingReboot.Xapi;

/// <summary>
/// Follows every task the client waits on through one <c>event.from</c> loop on the <c>task</c> class, instead of
/// one loop per task: a batch carries the updates of all tasks in flight, so the calls grow with the time tasks
/// run, not with how many run at once. The loop runs while someone waits and stops when nobody does (its token is
/// kept, so nothing is missed in between). A task that finished before its waiter registered is found among the
/// snapshots seen of tasks nobody waited on yet.
/// </summary>
/// <remarks>
/// What xapi does that the loop has to survive (ocaml/xapi/xapi_event.ml): a token it cannot parse raises
/// EVENT_FROM_TOKEN_PARSE_FAILURE [token] (EVENTS_LOST comes only from the deprecated event.next), and the answer is to
/// start again from <c>""</c>. Tasks are not persisted (datamodel.ml task: PersistNothing), so a master restart loses
/// them without a <c>del</c> event, while the token, a DB generation, stays valid; the sign is that the session had to
/// be opened again. After that the loop asks from <c>""</c> too. A <c>""</c> batch lists every task there is, so a task
/// waited on since before that call and missing from it is gone: its waiter gets HANDLE_INVALID.
/// </remarks>
internal sealed class TaskWatcher
{
    private const int MaxUnclaimed = 4096;
    private static readonly TimeSpan s_poll = TimeSpan.FromSeconds(30);

    private readonly XapiClient _client;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Waiter> _waiters = new(StringComparer.Ordinal);

    // Latest snapshot of tasks seen in a batch while nobody waited on them (ours between Async call and WaitAsync).
    private readonly Dictionary<string, XapiTaskRecord?> _unclaimed = new(StringComparer.Ordinal);
    private string _token = "";
    private long _registrations;
    private CancellationTokenSource? _loop;

    public TaskWatcher(XapiClient client)
    {
        _client = client;
    }

    /// <summary>Event batches received (for tests).</summary>
    public long Batches { get; private set; }

    /// <summary>
    /// Waits until the task succeeds, fails or is cancelled, reporting progress; its final record. Throws
    /// HANDLE_INVALID when the task disappears, and what <c>event.from</c> threw when the watch itself failed.
    /// </summary>
    public async Task<XapiTaskRecord> WaitAsync(string taskRef, string method, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        var waiter = new Waiter(method, progress);
        CancellationTokenSource? start = null;
        bool seenAlready;
        XapiTaskRecord? seen;
        lock (_gate)
        {
            waiter.Registration = ++_registrations;
            seenAlready = _unclaimed.Remove(taskRef, out seen);
            _waiters[taskRef] = waiter;
            if (_loop is null)
            {
                _loop = start = new CancellationTokenSource();
            }
        }

        if (seenAlready)
        {
            // Progress callbacks run outside the lock: they may cancel, which runs our finally below.
            waiter.Offer(taskRef, seen);
        }

        if (start is not null)
        {
            _ = Task.Run(() => RunAsync(start), CancellationToken.None);
        }

        try
        {
            return await waiter.Done.Task.WaitAsync(cancellationToken);
        }
        finally
        {
            lock (_gate)
            {
                if (_waiters.TryGetValue(taskRef, out var w) && w == waiter)
                {
                    _waiters.Remove(taskRef);
                }

                if (_waiters.Count == 0 && _loop is { } loop)
                {
                    // Nobody waits: stop polling (the token stays, so the next loop misses nothing).
                    _loop = null;
                    loop.Cancel();
                }
            }
        }
    }

    private async Task RunAsync(CancellationTokenSource loop)
    {
        using var _ = loop;
        var cancellationToken = loop.Token;
        while (true)
        {
            string token;
            long registeredBefore;
            lock (_gate)
            {
                if (_loop != loop)
                {
                    return;
                }

                token = _token;
                registeredBefore = _registrations;
            }

            JsonNode? batch;
            var logins = _client.Logins;
            try
            {
                batch = await _client.CallAsync("event.from", [new[] { "task" }, token, s_poll.TotalSeconds], cancellationToken, s_poll);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (XapiException e) when (e.Code == "EVENT_FROM_TOKEN_PARSE_FAILURE")
            {
                // The server cannot read the token: start again from the current state of every task.
                lock (_gate)
                {
                    if (_loop == loop)
                    {
                        _token = "";
                    }
                }

                continue;
            }
            catch (XapiException e) when (e.IsTransient)
            {
                // The master restarting or moving (HOST_OFFLINE, SESSION_INVALID...): its tasks are not known lost yet. Ask
                // again after a pause; a new session lists every task (below), and each waiter is bounded by its caller.
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _client.Clock, cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }
            catch (Exception e)
            {
                // What a task's own loop would have thrown: every task waited on now fails with it.
                lock (_gate)
                {
                    if (_loop == loop)
                    {
                        _loop = null;
                        _token = "";
                        _unclaimed.Clear();
                        foreach (var w in _waiters.Values)
                        {
                            w.Done.TrySetException(e);
                        }

                        _waiters.Clear();
                    }
                }

                return;
            }

            var offers = new List<(Waiter Waiter, string Ref, XapiTaskRecord? Record)>();
            lock (_gate)
            {
                if (_loop != loop)
                {
                    // Stopped meanwhile: the batch is not applied and the token not advanced, so the next loop sees it again.
                    return;
                }

                Batches++;
                // A new session meanwhile: the master may have restarted and lost its tasks; list them all next time.
                _token = _client.Logins != logins ? "" : batch?["token"]?.ToString() ?? _token;
                if (batch?["events"] is not JsonArray events)
                {
                    events = [];
                }

                var listed = token.Length == 0 ? new HashSet<string>(StringComparer.Ordinal) : null;

                foreach (var ev in events)
                {
                    var r = ev?["ref"]?.ToString();
                    if (r is null)
                    {
                        continue;
                    }

                    listed?.Add(r);

                    XapiTaskRecord? record = ev!["operation"]?.ToString() == "del"
                        ? null
                        : ev["snapshot"] is JsonObject snapshot ? XapiTaskRecord.From(r, snapshot) : null;
                    if (record is null && ev["operation"]?.ToString() != "del")
                    {
                        continue;
                    }

                    if (_waiters.TryGetValue(r, out var waiter))
                    {
                        if (record is not null)
                        {
                            waiter.Observe(record.Progress, _client.Clock.GetUtcNow());
                        }

                        offers.Add((waiter, r, record));
                    }
                    else if (record is null)
                    {
                        _unclaimed.Remove(r);
                    }
                    else
                    {
                        if (_unclaimed.Count >= MaxUnclaimed && !_unclaimed.ContainsKey(r))
                        {
                            // Tasks of others that are never destroyed would pile up: forget the oldest half.
                            foreach (var k in _unclaimed.Keys.Take(MaxUnclaimed / 2).ToList())
                            {
                                _unclaimed.Remove(k);
                            }
                        }

                        _unclaimed[r] = record;
                    }
                }

                if (listed is not null)
                {
                    // Every task there is was in this batch: one waited on since before the call and not in it is gone.
                    foreach (var (r, waiter) in _waiters)
                    {
                        if (waiter.Registration <= registeredBefore && !listed.Contains(r))
                        {
                            offers.Add((waiter, r, null));
                        }
                    }
                }
            }

            // Outside the lock: a progress callback may cancel its wait, which takes the lock.
            var finished = false;
            foreach (var (waiter, r, record) in offers)
            {
                finished |= record is null || record.IsFinished;
                waiter.Offer(r, record);
            }

            if (!finished && await PauseAsync(cancellationToken))
            {
                return;
            }
        }
    }

    /// <summary>
    /// After a batch of progress only, with enough tasks in flight: wait before asking again, up to
    /// <see cref="XapiClientOptions.TaskProgressInterval"/> on the client's clock, but only until the first task is
    /// expected to end at the rate its progress moved (at least <see cref="s_minPause"/>; a task already late on its
    /// estimate by d is asked about again after d, not at every event). A task finishing meanwhile is seen in the next batch,
    /// at most that late, while the others still fill the link. True when the loop was stopped meanwhile.
    /// </summary>
    private async Task<bool> PauseAsync(CancellationToken cancellationToken)
    {
        var interval = _client.Options.TaskProgressInterval;
        var now = _client.Clock.GetUtcNow();
        var pause = interval;
        int waiting;
        lock (_gate)
        {
            waiting = _waiters.Count;
            foreach (var w in _waiters.Values)
            {
                // Overdue by d (the rate slowed, or the task stalls near its end), it is asked about again after d.
                if (_client.Options.TaskEndEstimates && w.ExpectedEnd is { } end && (end - now).Duration() < pause)
                {
                    pause = (end - now).Duration();
                }
            }
        }

        if (interval <= TimeSpan.Zero || waiting < Math.Max(1, _client.Options.TaskCoalesceFrom))
        {
            return false;
        }

        try
        {
            await Task.Delay(pause > s_minPause ? pause : Min(s_minPause, interval), _client.Clock, cancellationToken);
            return false;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return true;
        }
    }

    private static readonly TimeSpan s_minPause = TimeSpan.FromSeconds(1);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private sealed class Waiter(string method, IProgress<double>? progress)
    {
        public TaskCompletionSource<XapiTaskRecord> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>When it was registered, counted among all waiters (to tell whether a batch could list its task).</summary>
        public long Registration { get; set; }

        private double _seenProgress = -1;
        private DateTimeOffset _seenAt;
        private double _rate;

        /// <summary>When the task should end at the rate its progress last moved between two batches (null: not known
        /// yet). Read and written under the watch's lock.</summary>
        public DateTimeOffset? ExpectedEnd => _rate > 0 ? _seenAt + TimeSpan.FromSeconds(Math.Min((1 - _seenProgress) / _rate, 86400)) : null;

        /// <summary>The task's progress as a batch showed it, at <paramref name="now"/> on the client's clock.</summary>
        public void Observe(double progress, DateTimeOffset now)
        {
            if (progress <= _seenProgress)
            {
                return;
            }

            if (_seenProgress >= 0 && now > _seenAt)
            {
                _rate = (progress - _seenProgress) / (now - _seenAt).TotalSeconds;
            }

            _seenProgress = progress;
            _seenAt = now;
        }

        /// <summary>A snapshot of the task (null: it was deleted).</summary>
        public void Offer(string taskRef, XapiTaskRecord? task)
        {
            if (task is null)
            {
                Done.TrySetException(new XapiException("HANDLE_INVALID", ["task", taskRef], method));
                return;
            }

            progress?.Report(task.Progress);
            if (task.IsFinished)
            {
                Done.TrySetResult(task);
            }
        }
    }
}
