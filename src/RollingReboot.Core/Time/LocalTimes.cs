namespace RollingReboot.Core.Time;

/// <summary>
/// Turns a wall-clock reading given by an operator ("04:00", "2026-11-23T04:00") into a moment, on the run's
/// <see cref="TimeProvider"/>: its date and its <see cref="TimeProvider.LocalTimeZone"/>, never the machine's date or
/// zone (under the lab the run's clock is hours ahead of the machine's; a test's fake clock is any date).
/// DateTime(Offset).Parse fills a missing date from the machine's clock, so it is banned in BannedSymbols.txt.
/// </summary>
public static class LocalTimes
{
    /// <summary>
    /// The next moment after <paramref name="clock"/>'s now at which its local zone reads <paramref name="timeOfDay"/>.
    /// That is at most one local day ahead (24 h, or 25 h of real time across a fall-back night). A time that the
    /// zone skips (02:30 on a spring-forward night) is the first moment after the gap, as a clock that jumps reads it;
    /// a time that occurs twice (fall-back) is whichever of the two comes first after now.
    /// </summary>
    public static DateTimeOffset NextOccurrence(TimeOnly timeOfDay, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(clock);
        var zone = clock.LocalTimeZone;
        var now = clock.GetUtcNow();
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, zone).DateTime);

        // Yesterday's date too: in a zone far ahead of or behind UTC the local date may differ by one around the change.
        for (var day = today.AddDays(-1); day <= today.AddDays(2); day = day.AddDays(1))
        {
            foreach (var candidate in Moments(day, timeOfDay, zone))
            {
                if (candidate > now)
                {
                    return candidate;
                }
            }
        }

        throw new InvalidOperationException($"no occurrence of {timeOfDay} within two days in {zone.Id}");
    }

    /// <summary>The moment a local date and time (no offset given) stands for in the clock's zone.</summary>
    public static DateTimeOffset AtLocal(DateOnly date, TimeOnly time, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(clock);
        return Moments(date, time, clock.LocalTimeZone).First();
    }

    /// <summary>The first moment at which <paramref name="zone"/> reads this date and time (a skipped time: the end of the gap).</summary>
    public static DateTimeOffset FirstMoment(DateOnly date, TimeOnly time, TimeZoneInfo zone)
    {
        ArgumentNullException.ThrowIfNull(zone);
        return Moments(date, time, zone).First();
    }

    /// <summary>The moments, earliest first, at which <paramref name="zone"/> reads this date and time: one, two
    /// (ambiguous, fall-back) or, for a skipped time, the end of the gap.</summary>
    private static IEnumerable<DateTimeOffset> Moments(DateOnly date, TimeOnly time, TimeZoneInfo zone)
    {
        var local = date.ToDateTime(time, DateTimeKind.Unspecified);
        if (zone.IsAmbiguousTime(local))
        {
            return zone.GetAmbiguousTimeOffsets(local)
                .Select(offset => new DateTimeOffset(local, offset))
                .OrderBy(m => m.UtcTicks)
                .ToArray();
        }

        if (zone.IsInvalidTime(local))
        {
            // Walk forward to the first local minute that exists: the instant the clock jumped to.
            var probe = new DateTime(local.Ticks - (local.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Unspecified);
            while (zone.IsInvalidTime(probe))
            {
                probe = probe.AddMinutes(1);
            }

            return [new DateTimeOffset(probe, zone.GetUtcOffset(probe))];
        }

        return [new DateTimeOffset(local, zone.GetUtcOffset(local))];
    }
}

/// <summary>An ISO 8601 moment that carries its offset ("O" as .NET writes it, or with fewer fraction digits).
/// Without an offset it is refused, so no machine zone or date ever fills a gap.</summary>
public static class IsoMoment
{
    private static readonly string[] s_formats = ["O", "yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", "yyyy-MM-dd'T'HH:mmK"];

    public static bool TryParse(string? text, out DateTimeOffset value)
    {
        value = default;
        return text is { Length: > 0 }
            && (text[^1] is 'Z' or 'z' || text.Length > 6 && text[^6] is '+' or '-')
            && DateTimeOffset.TryParseExact(text, s_formats, System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.None, out value);
    }
}
