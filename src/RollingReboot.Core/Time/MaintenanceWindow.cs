using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace RollingReboot.Core.Time;

/// <summary>One opening of a maintenance window: from <see cref="Start"/> (inclusive) to <see cref="End"/> (exclusive).</summary>
public sealed record WindowOpening(DateTimeOffset Start, DateTimeOffset End)
{
    public bool Contains(DateTimeOffset moment) => Start <= moment && moment < End;
}

/// <summary>
/// A recurring maintenance window: on some days of the week, from one time of day to another, in one time zone
/// (<c>Sat,Sun 01:00-05:00 Europe/Amsterdam</c>). An opening whose end is not after its start crosses midnight and
/// belongs to the day it starts (<c>Fri 22:00-02:00</c> is Friday night into Saturday). Times are read in the window's
/// zone on the given moment's date, never the machine's: a start the zone skips (spring forward) opens at the jump,
/// a repeated time (fall back) is the first of the two.
/// </summary>
public sealed partial class MaintenanceWindow
{
    private static readonly string[] s_dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

    private static readonly string[] s_timeFormats = ["H:mm", "HH:mm"];

    private readonly bool _endsAtMidnight;
    private readonly bool _zoneGiven;
    private readonly bool _everyDay;

    private MaintenanceWindow(IReadOnlySet<DayOfWeek> days, TimeOnly start, TimeOnly end, bool endsAtMidnight, TimeZoneInfo zone, bool zoneGiven, bool everyDay)
    {
        Days = days;
        StartTime = start;
        EndTime = end;
        _endsAtMidnight = endsAtMidnight;
        Zone = zone;
        _zoneGiven = zoneGiven;
        _everyDay = everyDay;
    }

    /// <summary>The days an opening starts on.</summary>
    public IReadOnlySet<DayOfWeek> Days { get; }

    public TimeOnly StartTime { get; }

    public TimeOnly EndTime { get; }

    public TimeZoneInfo Zone { get; }

    /// <summary>The opening ends on the next day (its end is not after its start, or it is 24:00).</summary>
    public bool CrossesMidnight => _endsAtMidnight || EndTime <= StartTime;

    /// <summary>
    /// Reads <c>[DAYS] HH:MM-HH:MM [ZONE]</c>: DAYS a comma-separated list of days (Mon, Tuesday...) and ranges
    /// (Mon-Fri, Fri-Mon), every day when left out; ZONE an IANA id (Europe/Amsterdam, UTC), <paramref name="defaultZone"/>
    /// when left out. The end may be 24:00.
    /// </summary>
    /// <param name="error">Why the text is not a window, naming the part that is wrong.</param>
    public static bool TryParse(string? text, TimeZoneInfo defaultZone, out MaintenanceWindow? window, out string error)
    {
        ArgumentNullException.ThrowIfNull(defaultZone);
        window = null;
        error = "";
        var words = (text ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var rangeAt = Array.FindIndex(words, w => TimeRange().IsMatch(w));
        if (rangeAt < 0)
        {
            error = "has no time range: give it as [DAYS] HH:MM-HH:MM [ZONE], e.g. \"Sat,Sun 01:00-05:00 Europe/Amsterdam\"";
            return false;
        }

        if (rangeAt > 1 || words.Length > rangeAt + 2)
        {
            error = "is not [DAYS] HH:MM-HH:MM [ZONE] (days without spaces: \"Sat,Sun\", \"Mon-Fri\")";
            return false;
        }

        var days = new HashSet<DayOfWeek>();
        var everyDay = rangeAt == 0;
        if (everyDay)
        {
            days.UnionWith(Enum.GetValues<DayOfWeek>());
        }
        else if (!TryParseDays(words[0], days, out error))
        {
            return false;
        }

        var m = TimeRange().Match(words[rangeAt]);
        if (!TryTime(m.Groups["start"].Value, allowMidnightEnd: false, out var start, out _))
        {
            error = $"start time '{m.Groups["start"].Value}' is not a time of day (00:00 to 23:59)";
            return false;
        }

        if (!TryTime(m.Groups["end"].Value, allowMidnightEnd: true, out var end, out var endsAtMidnight))
        {
            error = $"end time '{m.Groups["end"].Value}' is not a time of day (00:00 to 24:00)";
            return false;
        }

        if (end == start && !endsAtMidnight)
        {
            error = $"starts and ends at {start:HH:mm}: give a window that lasts (e.g. 01:00-05:00; 22:00-02:00 crosses midnight)";
            return false;
        }

        var zone = defaultZone;
        var zoneGiven = words.Length > rangeAt + 1;
        if (zoneGiven)
        {
            var id = words[rangeAt + 1];
            try
            {
                zone = TimeZoneInfo.FindSystemTimeZoneById(id);
            }
            catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
            {
                error = $"time zone '{id}' is not known: use an IANA zone such as Europe/Amsterdam, America/New_York or UTC";
                return false;
            }
        }

        window = new MaintenanceWindow(days, start, end, endsAtMidnight, zone, zoneGiven, everyDay);
        return true;
    }

    /// <summary>The opening <paramref name="moment"/> is in, or null when the window is closed then.</summary>
    public WindowOpening? OpeningAt(DateTimeOffset moment) =>
        OpeningsAround(moment, daysBefore: 2, daysAfter: 0).FirstOrDefault(o => o.Contains(moment));

    /// <summary>The opening <paramref name="moment"/> is in, else the next one to start after it.</summary>
    public WindowOpening CurrentOrNext(DateTimeOffset moment) =>
        OpeningAt(moment) ?? OpeningsAround(moment, daysBefore: 0, daysAfter: 8).First(o => o.Start > moment);

    /// <summary>The window as an operator writes it, with the zone always named: <c>Sat,Sun 01:00-05:00 Europe/Amsterdam</c>.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        if (!_everyDay)
        {
            sb.Append(string.Join(',', Enum.GetValues<DayOfWeek>().Select(d => (DayOfWeek)(((int)d + 1) % 7)).Where(Days.Contains).Select(d => s_dayNames[(int)d]))).Append(' ');
        }

        sb.Append(StartTime.ToString("HH:mm", CultureInfo.InvariantCulture)).Append('-')
            .Append(_endsAtMidnight ? "24:00" : EndTime.ToString("HH:mm", CultureInfo.InvariantCulture))
            .Append(' ').Append(Zone.Id);
        return sb.ToString();
    }

    /// <summary>A moment in the window's zone, as the plan and the log say it: <c>Sat 2026-11-28 01:00 +01:00</c>.</summary>
    public string Local(DateTimeOffset moment)
    {
        var local = TimeZoneInfo.ConvertTime(moment, Zone);
        return string.Create(CultureInfo.InvariantCulture, $"{s_dayNames[(int)local.DayOfWeek]} {local:yyyy-MM-dd HH:mm zzz}");
    }

    public override string ToString() => Describe();

    /// <summary>How far away an opening is, in an operator's words: <c>2d 3h 10m</c>, <c>45m</c>, <c>under a minute</c>.</summary>
    public static string Span(TimeSpan span)
    {
        var minutes = (long)Math.Ceiling(Math.Max(0, span.TotalMinutes) - 1e-9);
        if (minutes == 0)
        {
            return "under a minute";
        }

        var parts = new List<string>();
        if (minutes >= 1440)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{minutes / 1440}d"));
        }

        if (minutes % 1440 >= 60)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{minutes % 1440 / 60}h"));
        }

        if (minutes % 60 > 0)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{minutes % 60}m"));
        }

        return string.Join(' ', parts);
    }

    /// <summary>The zone was named in the text (else it is the run's clock's zone).</summary>
    public bool ZoneGiven => _zoneGiven;

    private IEnumerable<WindowOpening> OpeningsAround(DateTimeOffset moment, int daysBefore, int daysAfter)
    {
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(moment, Zone).DateTime);
        for (var day = today.AddDays(-daysBefore); day <= today.AddDays(daysAfter); day = day.AddDays(1))
        {
            if (!Days.Contains(day.DayOfWeek))
            {
                continue;
            }

            var start = LocalTimes.FirstMoment(day, StartTime, Zone);
            var end = LocalTimes.FirstMoment(CrossesMidnight ? day.AddDays(1) : day, _endsAtMidnight ? TimeOnly.MinValue : EndTime, Zone);
            if (end > start)
            {
                yield return new WindowOpening(start, end);
            }
        }
    }

    private static bool TryParseDays(string text, HashSet<DayOfWeek> days, out string error)
    {
        error = "";
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var ends = part.Split('-', StringSplitOptions.TrimEntries);
            if (ends.Length > 2 || ends.Any(e => e.Length == 0))
            {
                error = $"days '{text}' are not a list of days or ranges (Sat,Sun or Mon-Fri)";
                return false;
            }

            if (!TryDay(ends[0], out var first) || !TryDay(ends[^1], out var last))
            {
                error = $"day '{(TryDay(ends[0], out _) ? ends[^1] : ends[0])}' is not a day of the week (Mon, Tue, Wed, Thu, Fri, Sat, Sun)";
                return false;
            }

            // A range may wrap past Sunday: Fri-Mon is Friday, Saturday, Sunday, Monday.
            for (var d = first; ; d = (DayOfWeek)(((int)d + 1) % 7))
            {
                days.Add(d);
                if (d == last)
                {
                    break;
                }
            }
        }

        return true;
    }

    private static bool TryDay(string text, out DayOfWeek day)
    {
        day = default;
        if (text.Length < 2)
        {
            return false;
        }

        foreach (var d in Enum.GetValues<DayOfWeek>())
        {
            var full = d.ToString();
            if (text.Equals(full, StringComparison.OrdinalIgnoreCase)
                || (text.Length >= 3 && full.StartsWith(text, StringComparison.OrdinalIgnoreCase) && text.Length <= full.Length))
            {
                day = d;
                return true;
            }
        }

        return false;
    }

    private static bool TryTime(string text, bool allowMidnightEnd, out TimeOnly time, out bool midnightEnd)
    {
        midnightEnd = false;
        if (allowMidnightEnd && text is "24:00")
        {
            time = TimeOnly.MinValue;
            midnightEnd = true;
            return true;
        }

        return TimeOnly.TryParseExact(text, s_timeFormats, CultureInfo.InvariantCulture, DateTimeStyles.None, out time);
    }

    [GeneratedRegex(@"^(?<start>\d{1,2}:\d{2})-(?<end>\d{1,2}:\d{2})$")]
    private static partial Regex TimeRange();
}
