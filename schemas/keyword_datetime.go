package schemas

import "strings"

// Time and date keyword values.
//
// A value is one point or a range of two points joined by "~" (spaces around
// the "~" are accepted). A point is a date, a 24-hour time, or a date and a
// time separated by spaces (the space is optional after a Chinese date ending
// in 日). Dates take the forms of WeChat's examples and their close kin:
//
//	2019年10月1日   2019年10月   10月1日
//	2018-01-01   2018/01/01   2018.01.01   (one separator throughout)
//	2018-01      2018/01      2018.01
//	01-01        01/01        01.01
//
// Years have 4 digits, months and days 1 or 2. Times are H:MM or H:MM:SS with
// minutes and seconds of 2 digits. Every field is checked against the
// calendar: month 1-12, a day that exists in that month (29 February only in
// leap years, or when there is no year), hour 0-23, minute and second 0-59.
// A time may follow only a date with a day. The order of a range's two ends is
// not checked.
//
// A time value needs a time in each point; a date value needs a date in its
// first point, and its second point may be a bare time when the first has
// one ("2019年10月1日 15:00~16:00").

// dateTimeStatus is the outcome of parsing a point.
type dateTimeStatus int

const (
	dateTimeSyntax   dateTimeStatus = iota // not a date/time form
	dateTimeOK                             // a real date and/or time
	dateTimeCalendar                       // the form is right but no such date or time exists
)

// dateTimePoint is what one end of a range holds.
type dateTimePoint struct {
	hasDate, hasTime bool
}

func kwTime(s string) string {
	return kwDateTime(s, true)
}

func kwDate(s string) string {
	return kwDateTime(s, false)
}

func kwDateTime(s string, isTime bool) string {
	syntax := "must be a date such as 2019年10月1日 or 2019-10-01, optionally with a time, or a range joined by ~"
	if isTime {
		syntax = "must be a 24-hour time such as 15:01, optionally after a date, or a range joined by ~"
	}
	if s == "" {
		return kwReasonEmpty
	}
	if len(s) > maxDateTimeLen {
		return syntax
	}
	first, second, isRange := strings.Cut(s, "~")
	var points []string
	if isRange {
		points = []string{strings.TrimRight(first, " "), strings.TrimLeft(second, " ")}
	} else {
		points = []string{s}
	}
	calendar := false
	var prev dateTimePoint
	for i, text := range points {
		p, status := parseDateTimePoint(text)
		switch status {
		case dateTimeSyntax:
			return syntax
		case dateTimeCalendar:
			calendar = true
		}
		switch {
		case isTime && !p.hasTime:
			return syntax
		case !isTime && !p.hasDate && (i == 0 || !p.hasTime || !prev.hasTime):
			return syntax
		}
		prev = p
	}
	if calendar {
		return "must be a real calendar date and time"
	}
	return ""
}

// parseDateTimePoint parses one point: a date, a time, or a date then a time.
func parseDateTimePoint(s string) (dateTimePoint, dateTimeStatus) {
	if hasTime, ok := parseClock(s); ok {
		return dateTimePoint{hasTime: true}, statusOf(hasTime)
	}
	for _, layout := range dateLayouts() {
		d, rest, ok := layout.parse(s)
		if !ok {
			continue
		}
		status := statusOf(d.valid())
		if rest == "" {
			return dateTimePoint{hasDate: true}, status
		}
		if !d.hasDay {
			continue
		}
		trimmed := strings.TrimLeft(rest, " ")
		if len(trimmed) == len(rest) && !d.chinese {
			continue
		}
		valid, ok := parseClock(trimmed)
		if !ok {
			continue
		}
		if !valid {
			status = dateTimeCalendar
		}
		return dateTimePoint{hasDate: true, hasTime: true}, status
	}
	return dateTimePoint{}, dateTimeSyntax
}

func statusOf(valid bool) dateTimeStatus {
	if valid {
		return dateTimeOK
	}
	return dateTimeCalendar
}

// parseClock parses all of s as H:MM or H:MM:SS and reports whether it is a
// real time of day (valid) and whether it has that form at all (ok).
func parseClock(s string) (valid, ok bool) {
	c := dateTimeCursor{s: s}
	h, ok1 := c.number(1, 2)
	ok2 := c.literal(":")
	m, ok3 := c.number(2, 2)
	if !ok1 || !ok2 || !ok3 {
		return false, false
	}
	sec := 0
	if c.literal(":") {
		var ok4 bool
		if sec, ok4 = c.number(2, 2); !ok4 {
			return false, false
		}
	}
	if !c.done() {
		return false, false
	}
	return h <= 23 && m <= 59 && sec <= 59, true
}

// calendarDate is a parsed date; year 0 means no year, day 0 means no day.
type calendarDate struct {
	year, month, day int
	hasYear, hasDay  bool
	// chinese marks the 年月日 forms, after which a time needs no space.
	chinese bool
}

func (d calendarDate) valid() bool {
	if d.hasYear && d.year == 0 {
		return false
	}
	if d.month < 1 || d.month > 12 {
		return false
	}
	if !d.hasDay {
		return true
	}
	return d.day >= 1 && d.day <= daysInMonth(d.year, d.month, d.hasYear)
}

// daysInMonth returns the length of month; without a year February has 29
// days, since the date exists in some year.
func daysInMonth(year, month int, hasYear bool) int {
	switch month {
	case 2:
		if !hasYear || year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// dateLayout is one date form: Chinese (年月日) or numeric, with or without
// a year and a day. Every layout has a month.
type dateLayout struct {
	chinese, withYear, withDay bool
}

// dateLayouts lists the date forms longest first, so that a full date is
// never read as its year-month prefix.
func dateLayouts() [6]dateLayout {
	return [6]dateLayout{
		{chinese: true, withYear: true, withDay: true},
		{chinese: true, withYear: true},
		{chinese: true, withDay: true},
		{withYear: true, withDay: true},
		{withYear: true},
		{withDay: true},
	}
}

// parse reads a date of layout l at the start of s and returns the rest of s.
func (l dateLayout) parse(s string) (calendarDate, string, bool) {
	if l.chinese {
		return l.parseChinese(s)
	}
	return l.parseNumeric(s)
}

// parseChinese reads [YYYY年]M月[D日].
func (l dateLayout) parseChinese(s string) (calendarDate, string, bool) {
	c := dateTimeCursor{s: s}
	d := calendarDate{hasYear: l.withYear, hasDay: l.withDay, chinese: true}
	if l.withYear {
		y, ok := c.number(4, 4)
		if !ok || !c.literal("年") {
			return d, "", false
		}
		d.year = y
	}
	m, ok := c.number(1, 2)
	if !ok || !c.literal("月") {
		return d, "", false
	}
	d.month = m
	if l.withDay {
		day, ok := c.number(1, 2)
		if !ok || !c.literal("日") {
			return d, "", false
		}
		d.day = day
	}
	return d, c.rest(), true
}

// parseNumeric reads [YYYY]-M[-D] with "-", "/" or "." as the one separator.
func (l dateLayout) parseNumeric(s string) (calendarDate, string, bool) {
	c := dateTimeCursor{s: s}
	d := calendarDate{hasYear: l.withYear, hasDay: l.withDay}
	sep := ""
	if l.withYear {
		y, ok := c.number(4, 4)
		if !ok {
			return d, "", false
		}
		d.year = y
		if sep, ok = c.separator(); !ok {
			return d, "", false
		}
	}
	m, ok := c.number(1, 2)
	if !ok {
		return d, "", false
	}
	d.month = m
	if l.withDay {
		if sep == "" {
			if _, ok = c.separator(); !ok {
				return d, "", false
			}
		} else if !c.literal(sep) {
			return d, "", false
		}
		day, ok := c.number(1, 2)
		if !ok {
			return d, "", false
		}
		d.day = day
	}
	// A digit right after the last field means the field was longer than allowed.
	if rest := c.rest(); rest != "" && isKwDigit(rest[0]) {
		return d, "", false
	}
	return d, c.rest(), true
}

// dateTimeCursor reads a date or time left to right.
type dateTimeCursor struct {
	s string
	i int
}

// number reads min to max ASCII digits; it reads greedily and fails when
// fewer than min digits are there.
func (c *dateTimeCursor) number(min, max int) (int, bool) {
	n, v := 0, 0
	for n < max && c.i+n < len(c.s) && isKwDigit(c.s[c.i+n]) {
		v = v*10 + int(c.s[c.i+n]-'0')
		n++
	}
	if n < min {
		return 0, false
	}
	c.i += n
	return v, true
}

func (c *dateTimeCursor) literal(lit string) bool {
	if !strings.HasPrefix(c.s[c.i:], lit) {
		return false
	}
	c.i += len(lit)
	return true
}

func (c *dateTimeCursor) separator() (string, bool) {
	for _, sep := range [...]string{"-", "/", "."} {
		if c.literal(sep) {
			return sep, true
		}
	}
	return "", false
}

func (c *dateTimeCursor) rest() string { return c.s[c.i:] }

func (c *dateTimeCursor) done() bool { return c.i == len(c.s) }
