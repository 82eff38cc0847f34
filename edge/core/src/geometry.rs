//! Plane geometry in normalised frame coordinates (0..=1, y down).

/// A point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// An axis-aligned box (x, y = top-left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Rect {
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    pub fn center(&self) -> Point {
        Point { x: self.x + self.w / 2.0, y: self.y + self.h / 2.0 }
    }

    /// Whether `p` lies inside or on the edge.
    pub fn contains(&self, p: Point) -> bool {
        self.x <= p.x && p.x <= self.x + self.w && self.y <= p.y && p.y <= self.y + self.h
    }

    /// Bottom centre: where a standing person touches the floor (what zones and lines test).
    pub fn foot(&self) -> Point {
        Point { x: self.x + self.w / 2.0, y: self.y + self.h }
    }

    pub fn iou(&self, other: &Rect) -> f32 {
        let ix = (self.x + self.w).min(other.x + other.w) - self.x.max(other.x);
        let iy = (self.y + self.h).min(other.y + other.h) - self.y.max(other.y);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// A simple polygon (zones, masks). Points in order; closed implicitly.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon(pub Vec<Point>);

impl Polygon {
    /// Even-odd rule point-in-polygon test.
    pub fn contains(&self, p: Point) -> bool {
        let pts = &self.0;
        if pts.len() < 3 {
            return false;
        }
        let mut inside = false;
        let mut j = pts.len() - 1;
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[j]);
            if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
                inside = !inside;
            }
            j = i;
        }
        inside
    }
}

/// Which side of the directed line `a → b` a point is on: positive = left (counter-clockwise in
/// screen coordinates with y down means "right" visually; callers only compare signs).
pub fn side(a: Point, b: Point, p: Point) -> f32 {
    (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x)
}

/// Whether segment `p → q` crosses segment `a → b`; returns the crossing direction:
/// `Some(true)` when moving from the negative to the positive side of `a → b`.
pub fn crossing(a: Point, b: Point, p: Point, q: Point) -> Option<bool> {
    // A point exactly on the line counts as the positive side, so a step that ends on the line and
    // the next one that leaves it are one crossing, not zero or two.
    let (s1, s2) = (side(a, b, p) >= 0.0, side(a, b, q) >= 0.0);
    if s1 == s2 {
        return None;
    }
    let (t1, t2) = (side(p, q, a), side(p, q, b));
    if t1 != 0.0 && t2 != 0.0 && (t1 > 0.0) == (t2 > 0.0) {
        return None;
    }
    Some(s2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    #[test]
    fn polygon_contains() {
        let square = Polygon(vec![pt(0.2, 0.2), pt(0.8, 0.2), pt(0.8, 0.8), pt(0.2, 0.8)]);
        for (p, inside) in [(pt(0.5, 0.5), true), (pt(0.1, 0.5), false), (pt(0.79, 0.79), true), (pt(0.9, 0.9), false)]
        {
            assert_eq!(square.contains(p), inside, "{p:?}");
        }
        assert!(!Polygon(vec![pt(0.0, 0.0), pt(1.0, 1.0)]).contains(pt(0.5, 0.5)), "degenerate");
    }

    #[test]
    fn crossing_direction() {
        let (a, b) = (pt(0.5, 0.0), pt(0.5, 1.0)); // vertical line, top to bottom
        let left_to_right = crossing(a, b, pt(0.4, 0.5), pt(0.6, 0.5));
        let right_to_left = crossing(a, b, pt(0.6, 0.5), pt(0.4, 0.5));
        assert!(left_to_right.is_some() && right_to_left.is_some());
        assert_ne!(left_to_right, right_to_left);
        assert_eq!(crossing(a, b, pt(0.4, 0.5), pt(0.45, 0.5)), None, "no crossing");
        assert_eq!(crossing(a, b, pt(0.4, 1.5), pt(0.6, 1.5)), None, "beyond the segment end");
    }

    #[test]
    fn iou() {
        let a = Rect { x: 0.0, y: 0.0, w: 0.2, h: 0.2 };
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&Rect { x: 0.5, y: 0.5, w: 0.1, h: 0.1 }), 0.0);
        let half = a.iou(&Rect { x: 0.1, y: 0.0, w: 0.2, h: 0.2 });
        assert!((half - 1.0 / 3.0).abs() < 1e-6);
    }
}
